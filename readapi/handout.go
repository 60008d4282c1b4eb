package readapi

// The portal handout: a PDF a clinic gives patients and their contacts
// about the portal, customised with the clinic's name, the portal's address
// and the clinic's contact, which an administrator sets.

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/internal/pdfdoc"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff"))
		staff.GET("/clinic/contact", s.clinicContact)
		staff.GET("/clinic/portal-handout", s.portalHandout)
		admin := api.Group("", s.requireStaffRole("admin"))
		admin.PUT("/clinic/contact", s.setClinicContact)
	})
	notPHI["GET /api/v1/clinic/contact"] = "the clinic's own phone, email and contact text"
	notPHI["PUT /api/v1/clinic/contact"] = "a write of the clinic's contact; answers it back"
	notPHI["GET /api/v1/clinic/portal-handout"] = "a PDF about the portal for the clinic's patients; names no patient"
}

type clinicContactJSON struct {
	Phone string `json:"phone"`
	Email string `json:"email"`
	Text  string `json:"text"`
}

func contactJSON(ct clinic.Contact) clinicContactJSON {
	return clinicContactJSON{Phone: ct.Phone, Email: ct.Email, Text: ct.Text}
}

// GET /clinic/contact
func (s *server) clinicContact(c *gin.Context) {
	cl, err := s.Commands.ClinicState(c.Request.Context(), actorOf(c).ClinicID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, contactJSON(cl.Contact))
}

// PUT /clinic/contact {phone?,email?,text?}: the whole contact; an empty
// field clears that part.
func (s *server) setClinicContact(c *gin.Context) {
	var body clinicContactJSON
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	ct, err := s.Commands.SetClinicContact(c.Request.Context(), meta, commands.SetClinicContact{
		Contact: clinic.Contact{Phone: body.Phone, Email: body.Email, Text: body.Text},
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, contactJSON(ct))
}

// GET /clinic/portal-handout: the handout of the caller's clinic as a PDF.
func (s *server) portalHandout(c *gin.Context) {
	if s.PublicURL == "" {
		abortProblem(c, http.StatusServiceUnavailable, "not_configured",
			"the portal's address (PORTAL_PUBLIC_URL) is not configured, so the handout cannot say where to sign in")
		return
	}
	cl, err := s.Commands.ClinicState(c.Request.Context(), actorOf(c).ClinicID)
	if err != nil {
		fail(c, err)
		return
	}
	opts := cl.CurrentOptions()
	pdf, err := pdfdoc.PortalHandout(pdfdoc.Handout{
		ClinicName: cl.Name, PortalURL: s.PublicURL,
		Phone: cl.Contact.Phone, Email: cl.Contact.Email, ContactText: cl.Contact.Text,
		Payments: opts.PaymentProcessingEnabled, BalanceAndInvoices: opts.ShowBalanceAndInvoices,
		Date: s.local(s.now()),
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Content-Disposition", `inline; filename="portal-handout.pdf"`)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "application/pdf", pdf)
}
