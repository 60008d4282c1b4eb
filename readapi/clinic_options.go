package readapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/commands"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		api.GET("/clinic/options", s.requireStaffRole(), s.clinicOptions)
		api.PUT("/clinic/options", s.requireStaffRole("admin"), s.setClinicOptions)
	})
	notPHI["GET /api/v1/clinic/options"] = "the clinic's own settings; no patient data"
	notPHI["PUT /api/v1/clinic/options"] = "a write; answers the clinic's settings"
}

// GET /clinic/options: any staff member of the clinic.
func (s *server) clinicOptions(c *gin.Context) {
	o, err := s.Commands.ClinicOptions(c.Request.Context(), actorOf(c).ClinicID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// PUT /clinic/options {hidden_document_types,show_balance_and_invoices,payment_processing_enabled,allow_prepayment,currency}
// (administrators): a field left out keeps its value; answers the options.
func (s *server) setClinicOptions(c *gin.Context) {
	var body struct {
		HiddenDocumentTypes      *[]string `json:"hidden_document_types"`
		ShowBalanceAndInvoices   *bool     `json:"show_balance_and_invoices"`
		PaymentProcessingEnabled *bool     `json:"payment_processing_enabled"`
		AllowPrepayment          *bool     `json:"allow_prepayment"`
		Currency                 *string   `json:"currency"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	o, err := s.Commands.SetClinicOptions(c.Request.Context(), meta, commands.SetClinicOptions{
		HiddenDocumentTypes: body.HiddenDocumentTypes, ShowBalanceAndInvoices: body.ShowBalanceAndInvoices,
		PaymentProcessingEnabled: body.PaymentProcessingEnabled, AllowPrepayment: body.AllowPrepayment, Currency: body.Currency,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}
