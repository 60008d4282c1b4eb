package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
)

// RecordPayment records a payment taken at the desk: cash, a check, or the
// clinic's own card terminal, optionally against an invoice.
type RecordPayment struct {
	PatientID   uuid.UUID
	AmountCents int64
	Currency    string
	Method      string // cash, check, card_terminal
	InvoiceID   *uuid.UUID
}

// RecordPayment records PaymentRecorded (channel desk). Staff roles admin,
// staff and billing, of a clinic enrolled in payment processing. The
// amount must be positive, in the clinic's currency, and at most the
// balance unless the clinic allows prepayment. The payment id derives from
// the command id, so a retried request records once.
func (h *Handlers) RecordPayment(ctx context.Context, meta Meta, cmd RecordPayment) (uuid.UUID, error) {
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
	id := billingID("payment", p.ID, meta.CommandID)
	_, err = h.update(ctx, meta, p.ClinicID, billingStream(p.ID), newAccount, func(x domain.Aggregate) error {
		a := x.(*billing.Account)
		if _, done := a.Payments[id]; done {
			return nil // the retried request's payment
		}
		cur, err := a.CheckPayment(billing.PaymentRequest{AmountCents: cmd.AmountCents, Currency: cmd.Currency, InvoiceID: cmd.InvoiceID}, opts.Currency, opts.AllowPrepayment)
		if err != nil {
			return err
		}
		_, err = a.Record(billing.PaymentRecorded{
			PaymentID: id, PatientID: p.ID, ClinicID: p.ClinicID, AmountCents: cmd.AmountCents, Currency: cur,
			Method: cmd.Method, Channel: billing.ChannelDesk, InvoiceID: cmd.InvoiceID, ReceivedAt: h.now(),
		})
		return err
	})
	if err != nil {
		return uuid.Nil, err
	}
	return id, nil
}
