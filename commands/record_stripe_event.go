package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
	"github.com/portico-health/portico/internal/stripepay"
)

// StripeActor is the actor of what Stripe's webhooks record.
var StripeActor = Actor{ID: "stripe", Kind: "stripe"}

// RecordStripeEvent records what a verified Stripe webhook says about one
// of our payments, once however often and in whatever order Stripe
// delivers it:
//
//   - payment_intent.succeeded → RecordPayment (PaymentRecorded, channel
//     online), unless the payment succeeded already;
//   - payment_intent.payment_failed → PaymentAttemptFailed;
//   - charge.refunded → RefundPayment (PaymentRefunded for what was refunded
//     beyond the refunds recorded). A refund that arrives before its
//     success is reconciled: the refunded charge proves the payment
//     succeeded, so PaymentRecorded is recorded first, and the success
//     arriving later records nothing.
//
// The patient's account is found through the PaymentIntent's metadata
// (patient_id, payment_id). Every event's id derives from the Stripe event
// id (command id stripe:<event id>), and the account remembers the Stripe
// event ids it acted on, so a redelivery records nothing and a concurrent
// duplicate appends the same event ids, which the store takes once. Other
// event types record nothing. It answers whether anything was recorded.
func (h *Handlers) RecordStripeEvent(ctx context.Context, correlationID string, o stripepay.Outcome) (bool, error) {
	switch o.Type {
	case stripepay.EventSucceeded, stripepay.EventFailed, stripepay.EventRefunded:
	default:
		return false, nil
	}
	if o.PaymentID == uuid.Nil || o.PatientID == uuid.Nil {
		return false, domain.NotFound("payment")
	}
	p, err := h.Patient(ctx, o.PatientID)
	if err != nil {
		return false, err
	}
	if o.ClinicID != uuid.Nil && o.ClinicID != p.ClinicID {
		return false, domain.NotFound("payment")
	}
	meta := Meta{Actor: StripeActor, CommandID: "stripe:" + o.EventID, CausationID: o.EventID, CorrelationID: correlationID}
	meta.Actor.ClinicID = p.ClinicID
	meta = meta.withDefaults()

	// The card of a success whose charge was not expanded in the event:
	// asked once, before deciding, and only for a payment not yet recorded.
	if o.Type == stripepay.EventSucceeded && o.CardBrand == "" && o.ChargeID != "" && h.cards != nil {
		acct, err := h.BillingAccount(ctx, p.ID)
		if err != nil {
			return false, err
		}
		if pay := acct.Payments[o.PaymentID]; pay == nil || pay.Recorded == nil {
			o.CardBrand, o.CardLast4 = h.cards.CardOfCharge(ctx, o.ChargeID)
		}
	}
	recorded := false
	_, err = h.update(ctx, meta, p.ClinicID, billingStream(p.ID), newAccount, func(x domain.Aggregate) error {
		a := x.(*billing.Account)
		a.Apply(nil)
		recorded = false
		switch o.Type {
		case stripepay.EventSucceeded:
			ok, err := a.Record(succeeded(a, o, p.ID, p.ClinicID, o.EventID))
			recorded = ok
			return err
		case stripepay.EventFailed:
			recorded = a.AttemptFailed(billing.PaymentAttemptFailed{
				PaymentID: o.PaymentID, PatientID: p.ID, PaymentIntentID: o.PaymentIntentID, StripeEventID: o.EventID,
				FailureCode: o.FailureCode, FailureMessage: o.FailureMessage,
			})
			return nil
		default: // refunded
			if a.Seen(o.EventID) {
				return nil
			}
			if pay := a.Payments[o.PaymentID]; pay == nil || pay.Recorded == nil {
				// Reconcile: the refunded charge succeeded. The success's
				// own event, when it comes, finds the payment recorded.
				if _, err := a.Record(succeeded(a, o, p.ID, p.ClinicID, "")); err != nil {
					return err
				}
			}
			ok, err := a.Refund(o.PaymentID, o.RefundedCents, o.ChargeID, o.EventID, o.Created)
			recorded = ok
			return err
		}
	})
	return recorded, err
}

// succeeded is the PaymentRecorded of a card payment Stripe reports
// succeeded (or refunded, which implies it).
func succeeded(a *billing.Account, o stripepay.Outcome, patientID, clinicID uuid.UUID, stripeEventID string) billing.PaymentRecorded {
	invoice := o.InvoiceID
	if pay := a.Payments[o.PaymentID]; pay != nil && pay.InvoiceID != nil {
		invoice = pay.InvoiceID
	}
	if invoice != nil && a.Invoices[*invoice] == nil {
		invoice = nil // not an invoice of this account
	}
	return billing.PaymentRecorded{
		PaymentID: o.PaymentID, PatientID: patientID, ClinicID: clinicID, AmountCents: o.AmountCents, Currency: o.Currency,
		Method: billing.MethodCard, Channel: billing.ChannelOnline, InvoiceID: invoice, CardBrand: o.CardBrand, CardLast4: o.CardLast4,
		PaymentIntentID: o.PaymentIntentID, StripeEventID: stripeEventID, ReceivedAt: o.Created,
	}
}
