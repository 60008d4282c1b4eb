package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
	"github.com/portico-health/portico/internal/stripepay"
)

// StartCardPayment starts a card payment through the portal. The API has
// checked the caller's grant to the patient (permission billing).
type StartCardPayment struct {
	PatientID   uuid.UUID
	AmountCents int64
	Currency    string
	InvoiceID   *uuid.UUID
}

// StartedCardPayment is what the portal needs to confirm the payment with
// Stripe.js. The client secret is answered once and never recorded.
type StartedCardPayment struct {
	PaymentID    uuid.UUID
	ClientSecret string
}

// StartCardPayment validates the payment, creates its Stripe PaymentIntent
// (metadata payment_id, patient_id, clinic_id, invoice_id; idempotency key
// portico-payment-<payment_id>), then records CardPaymentStarted. The
// payment id derives from the command id: a retried request (same
// Idempotency-Key) asks Stripe with the same idempotency key, gets the same
// PaymentIntent, and records nothing twice.
func (h *Handlers) StartCardPayment(ctx context.Context, meta Meta, cmd StartCardPayment) (StartedCardPayment, error) {
	meta = meta.withDefaults()
	if meta.Actor.Kind != "portal" {
		return StartedCardPayment{}, domain.Forbidden("card payments are made through the portal")
	}
	by, _ := uuid.Parse(meta.Actor.ID)
	p, err := h.Patient(ctx, cmd.PatientID)
	if err != nil {
		return StartedCardPayment{}, err
	}
	opts, err := h.paymentOptions(ctx, p.ClinicID)
	if err != nil {
		return StartedCardPayment{}, err
	}
	id := billingID("payment", p.ID, meta.CommandID)
	acct, err := h.BillingAccount(ctx, p.ID)
	if err != nil {
		return StartedCardPayment{}, err
	}
	req := billing.PaymentRequest{AmountCents: cmd.AmountCents, Currency: cmd.Currency, InvoiceID: cmd.InvoiceID}
	if prev, retried := acct.Payments[id]; retried {
		// Ask Stripe again for the same PaymentIntent, with what was asked.
		req = billing.PaymentRequest{AmountCents: prev.AmountCents, Currency: prev.Currency, InvoiceID: prev.InvoiceID}
	} else if req.Currency, err = acct.CheckPayment(req, opts.Currency, opts.AllowPrepayment); err != nil {
		return StartedCardPayment{}, err
	}
	if h.cards == nil {
		return StartedCardPayment{}, ErrCardPaymentsUnavailable
	}
	clinicName, err := h.ClinicName(ctx, p.ClinicID)
	if err != nil {
		return StartedCardPayment{}, err
	}
	intent, err := h.cards.CreatePaymentIntent(ctx, stripepay.IntentRequest{
		PaymentID: id, PatientID: p.ID, ClinicID: p.ClinicID, InvoiceID: req.InvoiceID,
		AmountCents: req.AmountCents, Currency: req.Currency, Description: "Payment to " + clinicName,
	})
	if err != nil {
		return StartedCardPayment{}, err
	}
	_, err = h.update(ctx, meta, p.ClinicID, billingStream(p.ID), newAccount, func(x domain.Aggregate) error {
		return x.(*billing.Account).StartCardPayment(billing.CardPaymentStarted{
			PaymentID: id, PatientID: p.ID, ClinicID: p.ClinicID, AmountCents: req.AmountCents, Currency: req.Currency,
			InvoiceID: req.InvoiceID, PaymentIntentID: intent.ID, StartedBy: by,
		})
	})
	if err != nil {
		return StartedCardPayment{}, err
	}
	return StartedCardPayment{PaymentID: id, ClientSecret: intent.ClientSecret}, nil
}
