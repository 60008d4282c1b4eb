package readapi

// Payments (only for a clinic enrolled in payment processing): staff issue
// and void invoices and record desk payments; a portal user with the grant
// permission "billing" sees the balance and invoices (unless the clinic
// turned them off), pays by card through Stripe, lists payments and prints
// receipts; Stripe's webhooks record each outcome once (docs/payments.md).

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/domain/billing"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/internal/pdfdoc"
	"github.com/portico-health/portico/internal/stripepay"
	billingrm "github.com/portico-health/portico/projections/billing"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff", "billing"))
		staff.POST("/patients/:pid/invoices", s.issueInvoice)
		staff.POST("/patients/:pid/invoices/:iid/void", s.voidInvoice)
		staff.POST("/patients/:pid/payments", s.recordDeskPayment)
		s.phi(staff, "GET", "/patients/:pid/account", audit.SubtypeQuery, s.staffAccount)
		s.phi(staff, "GET", "/patients/:pid/payments/:payment_id/receipt", audit.SubtypePrint, s.staffReceipt)
		portal := api.Group("", s.requireSession("portal"))
		s.phi(portal, "GET", "/portal/patients/:pid/balance", audit.SubtypeQuery, s.portalBalance)
		s.phi(portal, "GET", "/portal/patients/:pid/invoices", audit.SubtypeQuery, s.portalInvoices)
		portal.POST("/portal/patients/:pid/payments", s.startCardPayment)
		s.phi(portal, "GET", "/portal/patients/:pid/payments", audit.SubtypeQuery, s.portalPayments)
		s.phi(portal, "GET", "/portal/patients/:pid/payments/:payment_id/receipt", audit.SubtypePrint, s.portalReceipt)
		api.POST("/webhooks/stripe", s.stripeWebhook)
	})
	notPHI["POST /api/v1/patients/:pid/invoices"] = "a write; answers the new id only"
	notPHI["POST /api/v1/patients/:pid/invoices/:iid/void"] = "a write; answers 204"
	notPHI["POST /api/v1/patients/:pid/payments"] = "a write; answers the new id only"
	notPHI["POST /api/v1/portal/patients/:pid/payments"] = "a write; answers the payment id and the Stripe client secret"
	notPHI["POST /api/v1/webhooks/stripe"] = "Stripe's notifications in; answers whether something was recorded"
}

// Entity types of access records (FHIR terms).
const (
	invoiceEntity = "Invoice"
	paymentEntity = "PaymentReconciliation"
	accountEntity = "Account"
)

const listLimit = 500

// POST /patients/{pid}/invoices {lines:[{description,amount_cents}],currency,due_date}
func (s *server) issueInvoice(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		Lines    []billing.Line `json:"lines"`
		Currency string         `json:"currency"`
		DueDate  string         `json:"due_date"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.IssueInvoice(c.Request.Context(), meta, commands.IssueInvoice{PatientID: pid, Lines: body.Lines, Currency: body.Currency, DueDate: body.DueDate})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// POST /patients/{pid}/invoices/{iid}/void {reason?}
func (s *server) voidInvoice(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	iid, ok := pathID(c, "iid")
	if !ok {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	if c.Request.ContentLength != 0 && !bindJSON(c, &body) {
		return
	}
	if err := s.Commands.VoidInvoice(c.Request.Context(), meta, commands.VoidInvoice{PatientID: pid, InvoiceID: iid, Reason: body.Reason}); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// POST /patients/{pid}/payments {amount_cents,currency,method,invoice_id?}: a desk payment.
func (s *server) recordDeskPayment(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		AmountCents int64      `json:"amount_cents"`
		Currency    string     `json:"currency"`
		Method      string     `json:"method"`
		InvoiceID   *uuid.UUID `json:"invoice_id"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.RecordPayment(c.Request.Context(), meta, commands.RecordPayment{
		PatientID: pid, AmountCents: body.AmountCents, Currency: body.Currency, Method: body.Method, InvoiceID: body.InvoiceID,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// billingOptions are the Clinic Options of a patient's clinic, which must
// be enrolled in payment processing.
func (s *server) billingOptions(ctx context.Context, pid uuid.UUID) (uuid.UUID, clinic.Options, error) {
	clinicID, err := s.Commands.PatientClinic(ctx, pid)
	if err != nil {
		return uuid.Nil, clinic.Options{}, err
	}
	o, err := s.Commands.ClinicOptions(ctx, clinicID)
	if err != nil {
		return clinicID, o, err
	}
	if !o.PaymentProcessingEnabled {
		return clinicID, o, domain.PaymentProcessingDisabled()
	}
	return clinicID, o, nil
}

// portalBilling checks a portal caller's grant (permission billing) and
// the clinic's enrolment.
func (s *server) portalBilling(c *gin.Context) (uuid.UUID, portaluser.Grant, clinic.Options, bool) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return pid, portaluser.Grant{}, clinic.Options{}, false
	}
	g, err := s.portalGrant(c, pid, portaluser.PermBilling)
	if err != nil {
		fail(c, err)
		return pid, g, clinic.Options{}, false
	}
	_, o, err := s.billingOptions(c.Request.Context(), pid)
	if err != nil {
		fail(c, err)
		return pid, g, o, false
	}
	return pid, g, o, true
}

// portalStatement is portalBilling for the balance and the invoices, which a
// clinic can turn off: then they are not found (what names them).
func (s *server) portalStatement(c *gin.Context, what string) (uuid.UUID, portaluser.Grant, clinic.Options, bool) {
	pid, g, o, ok := s.portalBilling(c)
	if ok && !o.ShowBalanceAndInvoices {
		fail(c, domain.NotFound(what))
		return pid, g, o, false
	}
	return pid, g, o, ok
}

// balancesOf are the balances of a patient, with a zero line in the
// clinic's currency when nothing was billed in it.
func (s *server) balancesOf(ctx context.Context, pid uuid.UUID, o clinic.Options) ([]billingrm.Balance, error) {
	list, err := billingrm.Balances(ctx, s.Pool, pid)
	if err != nil {
		return nil, err
	}
	for _, b := range list {
		if b.Currency == o.Currency {
			return list, nil
		}
	}
	return append([]billingrm.Balance{{Currency: o.Currency}}, list...), nil
}

// GET /portal/patients/{pid}/balance: 404 when the clinic turned balance and invoices off.
func (s *server) portalBalance(c *gin.Context) {
	pid, g, o, ok := s.portalStatement(c, "balance")
	if !ok {
		return
	}
	list, err := s.balancesOf(c.Request.Context(), pid, o)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "balances": list}, phiAccess{
		Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g), Entities: []audit.Entity{{Type: "Patient", ID: pid}, {Type: accountEntity, ID: pid}},
	})
}

func invoiceEntities(pid uuid.UUID, list []billingrm.Invoice) []audit.Entity {
	out := []audit.Entity{{Type: "Patient", ID: pid}}
	for _, i := range list {
		out = append(out, audit.Entity{Type: invoiceEntity, ID: i.ID, Version: i.Version})
	}
	return out
}

func paymentEntities(list []billingrm.Payment) []audit.Entity {
	var out []audit.Entity
	for _, p := range list {
		out = append(out, audit.Entity{Type: paymentEntity, ID: p.ID, Version: p.Version})
	}
	return out
}

// GET /portal/patients/{pid}/invoices: newest first; 404 when the clinic turned balance and invoices off.
func (s *server) portalInvoices(c *gin.Context) {
	pid, g, _, ok := s.portalStatement(c, "invoices")
	if !ok {
		return
	}
	list, err := billingrm.Invoices(c.Request.Context(), s.Pool, pid, listLimit)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "invoices": list}, phiAccess{
		Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g), Entities: invoiceEntities(pid, list),
	})
}

// GET /portal/patients/{pid}/payments: newest first, with their state.
func (s *server) portalPayments(c *gin.Context) {
	pid, g, _, ok := s.portalBilling(c)
	if !ok {
		return
	}
	list, err := billingrm.Payments(c.Request.Context(), s.Pool, pid, listLimit)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "payments": list}, phiAccess{
		Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g), Entities: append([]audit.Entity{{Type: "Patient", ID: pid}}, paymentEntities(list)...),
	})
}

// POST /portal/patients/{pid}/payments {amount_cents,currency,invoice_id?}:
// 201 {payment_id, client_secret}. The client secret is answered once and
// never stored or logged.
func (s *server) startCardPayment(c *gin.Context) {
	pid, _, _, ok := s.portalBilling(c)
	if !ok {
		return
	}
	var body struct {
		AmountCents int64      `json:"amount_cents"`
		Currency    string     `json:"currency"`
		InvoiceID   *uuid.UUID `json:"invoice_id"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	res, err := s.Commands.StartCardPayment(c.Request.Context(), meta, commands.StartCardPayment{
		PatientID: pid, AmountCents: body.AmountCents, Currency: body.Currency, InvoiceID: body.InvoiceID,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"payment_id": res.PaymentID, "client_secret": res.ClientSecret})
}

// GET /patients/{pid}/account: the staff view of a patient's account.
func (s *server) staffAccount(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	if _, err := s.staffPatient(c, pid); err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	_, o, err := s.billingOptions(ctx, pid)
	if err != nil {
		fail(c, err)
		return
	}
	balances, err := s.balancesOf(ctx, pid, o)
	if err != nil {
		fail(c, err)
		return
	}
	invoices, err := billingrm.Invoices(ctx, s.Pool, pid, listLimit)
	if err != nil {
		fail(c, err)
		return
	}
	payments, err := billingrm.Payments(ctx, s.Pool, pid, listLimit)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "balances": balances, "invoices": invoices, "payments": payments}, phiAccess{
		Patients: []uuid.UUID{pid}, Entities: append(invoiceEntities(pid, invoices), paymentEntities(payments)...),
	})
}

// GET /portal/patients/{pid}/payments/{payment_id}/receipt
func (s *server) portalReceipt(c *gin.Context) {
	if _, ok := pathID(c, "pid"); !ok {
		return
	}
	payID, ok := pathID(c, "payment_id")
	if !ok {
		return
	}
	pid, g, _, ok := s.portalBilling(c)
	if !ok {
		return
	}
	s.deliverReceipt(c, pid, payID, behalfOf(g))
}

// GET /patients/{pid}/payments/{payment_id}/receipt
func (s *server) staffReceipt(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	payID, ok := pathID(c, "payment_id")
	if !ok {
		return
	}
	if _, err := s.staffPatient(c, pid); err != nil {
		fail(c, err)
		return
	}
	if _, _, err := s.billingOptions(c.Request.Context(), pid); err != nil {
		fail(c, err)
		return
	}
	s.deliverReceipt(c, pid, payID, uuid.Nil)
}

// deliverReceipt prints the receipt of a payment that succeeded, from the
// patient's account as its stream says now; any other payment has none.
func (s *server) deliverReceipt(c *gin.Context, pid, payID, onBehalfOf uuid.UUID) {
	ctx := c.Request.Context()
	acct, err := s.Commands.BillingAccount(ctx, pid)
	if err != nil {
		fail(c, err)
		return
	}
	pay := acct.Payments[payID]
	if pay == nil || pay.Recorded == nil {
		fail(c, domain.NotFound("receipt"))
		return
	}
	rec := pay.Recorded
	p, err := s.Commands.Patient(ctx, pid)
	if err != nil {
		fail(c, err)
		return
	}
	cl, err := s.Commands.ClinicState(ctx, p.ClinicID)
	if err != nil {
		fail(c, err)
		return
	}
	sheet := pdfdoc.ReceiptSheet{
		ClinicName: cl.Name, PatientName: p.FirstName + " " + p.LastName, ReceiptNumber: rec.ReceiptNumber,
		AmountCents: rec.AmountCents, Currency: rec.Currency, Method: rec.Method, CardBrand: rec.CardBrand, CardLast4: rec.CardLast4,
		ReceivedAt: s.local(rec.ReceivedAt), RefundedCents: pay.RefundedCents, PrintedAt: s.local(s.now()),
	}
	for _, part := range []string{cl.Contact.Phone, cl.Contact.Email} {
		if part != "" {
			if sheet.ClinicContact != "" {
				sheet.ClinicContact += " - "
			}
			sheet.ClinicContact += part
		}
	}
	if rec.InvoiceID != nil {
		sheet.InvoiceID = rec.InvoiceID.String()
	}
	pdf, err := pdfdoc.Receipt(sheet)
	if err != nil {
		fail(c, err)
		return
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: onBehalfOf, Entities: []audit.Entity{
		{Type: "Patient", ID: pid}, {Type: paymentEntity, ID: payID, Version: acct.Version()},
	}}
	// The file name names no one: it is the receipt number.
	c.Header("Content-Disposition", `inline; filename="receipt-`+rec.ReceiptNumber+`.pdf"`)
	c.Header("X-Content-Type-Options", "nosniff")
	s.deliverPHIBytes(c, http.StatusOK, "application/pdf", pdf, acc)
}

// maxWebhookBytes bounds a webhook's body; Stripe's are a few kilobytes.
const maxWebhookBytes = 1 << 20

// POST /webhooks/stripe: verifies Stripe-Signature, then records the
// outcome once (commands.RecordStripeEvent). A payload that does not verify
// is refused (400 signature_invalid) and nothing is stored; event types
// Portico does not act on are acknowledged and ignored.
func (s *server) stripeWebhook(c *gin.Context) {
	v := s.Commands.StripeWebhooks()
	if v == nil {
		abortProblem(c, http.StatusServiceUnavailable, "payments_unavailable", "card payments are not configured on this server")
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxWebhookBytes))
	if err != nil {
		abortProblem(c, http.StatusBadRequest, "validation_failed", "the body could not be read, or is larger than 1 MiB")
		return
	}
	o, err := v.Verify(payload, c.GetHeader("Stripe-Signature"))
	if errors.Is(err, stripepay.ErrSignature) {
		abortProblem(c, http.StatusBadRequest, "signature_invalid", "the Stripe-Signature header does not verify this payload (or is too old)")
		return
	}
	if err != nil {
		abortProblem(c, http.StatusBadRequest, "validation_failed", "the event cannot be read")
		return
	}
	switch o.Type {
	case stripepay.EventSucceeded, stripepay.EventFailed, stripepay.EventRefunded:
	default:
		c.JSON(http.StatusOK, gin.H{"received": true, "recorded": false})
		return
	}
	ctx := c.Request.Context()
	if o.PatientID == uuid.Nil && (o.PaymentID != uuid.Nil || o.PaymentIntentID != "") {
		// An object without our metadata: the read model may know the
		// PaymentIntent. If it does not (yet), Stripe retries later.
		payID, patientID, err := billingrm.Locate(ctx, s.Pool, o.PaymentID, o.PaymentIntentID)
		if err != nil {
			fail(c, err)
			return
		}
		o.PaymentID, o.PatientID = payID, patientID
	}
	recorded, err := s.Commands.RecordStripeEvent(ctx, correlationID(c), o)
	if err != nil {
		fail(c, err)
		return
	}
	s.Logger.Info("stripe webhook", "event_id", o.EventID, "type", o.Type, "recorded", recorded, "correlation_id", correlationID(c))
	c.JSON(http.StatusOK, gin.H{"received": true, "recorded": recorded})
}
