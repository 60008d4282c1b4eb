package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
)

// VoidInvoice takes an invoice of a patient of the actor's clinic off the
// balance.
type VoidInvoice struct {
	PatientID uuid.UUID
	InvoiceID uuid.UUID
	Reason    string
}

// VoidInvoice records InvoiceVoided, unless the invoice is void already.
// An invoice with payments applied to it is refused (invoice_has_payments).
func (h *Handlers) VoidInvoice(ctx context.Context, meta Meta, cmd VoidInvoice) error {
	meta = meta.withDefaults()
	if err := requireRole(meta, billingManagers); err != nil {
		return err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return err
	}
	if _, err := h.paymentOptions(ctx, p.ClinicID); err != nil {
		return err
	}
	_, err = h.update(ctx, meta, p.ClinicID, billingStream(p.ID), newAccount, func(a domain.Aggregate) error {
		return a.(*billing.Account).Void(cmd.InvoiceID, cmd.Reason)
	})
	return err
}
