package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
)

// IssueInvoice bills a patient of the actor's clinic.
type IssueInvoice struct {
	PatientID uuid.UUID
	Lines     []billing.Line
	Currency  string
	DueDate   string // YYYY-MM-DD
}

// IssueInvoice records InvoiceIssued on the patient's account. Staff roles
// admin, staff and billing, of a clinic enrolled in payment processing.
// The invoice id derives from the command id, so a retried request issues
// once.
func (h *Handlers) IssueInvoice(ctx context.Context, meta Meta, cmd IssueInvoice) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, billingManagers); err != nil {
		return uuid.Nil, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return uuid.Nil, err
	}
	opts, err := h.paymentOptions(ctx, p.ClinicID)
	if err != nil {
		return uuid.Nil, err
	}
	id := billingID("invoice", p.ID, meta.CommandID)
	_, err = h.update(ctx, meta, p.ClinicID, billingStream(p.ID), newAccount, func(a domain.Aggregate) error {
		return a.(*billing.Account).Issue(billing.InvoiceIssued{
			InvoiceID: id, PatientID: p.ID, ClinicID: p.ClinicID, Currency: cmd.Currency, Lines: cmd.Lines, DueDate: cmd.DueDate,
		}, opts.Currency, h.now())
	})
	if err != nil {
		return uuid.Nil, err
	}
	return id, nil
}
