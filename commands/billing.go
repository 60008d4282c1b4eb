package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/stripepay"
)

// Staff roles that issue invoices and record desk payments.
var billingManagers = []string{string(staff.RoleAdmin), string(staff.RoleStaff), string(staff.RoleBilling)}

// CardPayments is what the card payment commands need of Stripe
// (internal/stripepay.Client); tests may give another.
type CardPayments interface {
	CreatePaymentIntent(ctx context.Context, r stripepay.IntentRequest) (stripepay.Intent, error)
	CardOfCharge(ctx context.Context, chargeID string) (brand, last4 string)
}

// WebhookVerifier checks and reads Stripe's webhooks
// (internal/stripepay.Client).
type WebhookVerifier interface {
	Verify(payload []byte, signature string) (stripepay.Outcome, error)
}

// WithCardPayments sets how card payments reach Stripe, and, when c can,
// how Stripe's webhooks are verified. Without it, starting a card payment
// answers ErrCardPaymentsUnavailable.
func WithCardPayments(c CardPayments) Option { return func(h *Handlers) { h.cards = c } }

// StripeWebhooks verifies Stripe's webhooks; nil when no Stripe is
// configured or it cannot.
func (h *Handlers) StripeWebhooks() WebhookVerifier {
	if v, ok := h.cards.(WebhookVerifier); ok {
		return v
	}
	return nil
}

// ErrCardPaymentsUnavailable: no Stripe is configured (PORTAL_STRIPE_SECRET_KEY).
var ErrCardPaymentsUnavailable = errors.New("commands: card payments are not configured on this server")

func billingStream(patientID uuid.UUID) string {
	return eventstore.StreamName(billing.Category, patientID.String())
}

func newAccount() domain.Aggregate { return &billing.Account{} }

// billingID is the id of the invoice or payment a command makes for a
// patient: from the command id (a retried request makes the same one) and
// the patient, because an Idempotency-Key is scoped to the caller and the
// route, not to the patient in the path: the same key sent for two patients
// makes two invoices, not one id in two accounts (and in the read model,
// whose ids are global, one row for both).
func billingID(kind string, patientID uuid.UUID, commandID string) uuid.UUID {
	return uuid.NewSHA1(bootstrapNamespace, []byte(kind+":"+patientID.String()+":"+commandID))
}

// paymentOptions are the Clinic Options of a clinic that takes payments;
// for a clinic not enrolled, payment_processing_disabled.
func (h *Handlers) paymentOptions(ctx context.Context, clinicID uuid.UUID) (clinic.Options, error) {
	o, err := h.ClinicOptions(ctx, clinicID)
	if err != nil {
		return o, err
	}
	if !o.PaymentProcessingEnabled {
		return o, domain.PaymentProcessingDisabled()
	}
	return o, nil
}

// BillingAccount is a patient's account as its stream says now (empty for
// a patient never billed). Callers check that the reader may see it.
func (h *Handlers) BillingAccount(ctx context.Context, patientID uuid.UUID) (*billing.Account, error) {
	a := &billing.Account{}
	a.Apply(nil) // an empty account has empty maps
	if err := h.load(ctx, billingStream(patientID), a); err != nil {
		return nil, err
	}
	return a, nil
}
