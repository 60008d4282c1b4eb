// Package stripepay is Portico's adapter to Stripe (stripe-go v76): it
// creates the PaymentIntent of a card payment, and verifies and reads the
// webhooks Stripe sends about it. The card never reaches Portico: the portal
// confirms the PaymentIntent with Stripe.js using the client secret.
//
// Nothing here logs or returns the secret key or the webhook secret; the
// client secret of a PaymentIntent goes back to the caller once and is
// never recorded.
package stripepay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Config are the Stripe settings (PORTAL_STRIPE_*).
type Config struct {
	SecretKey     string // PORTAL_STRIPE_SECRET_KEY: sk_test_… or sk_live_…
	WebhookSecret string // PORTAL_STRIPE_WEBHOOK_SECRET: whsec_…
	APIBase       string // PORTAL_STRIPE_API_BASE: empty for api.stripe.com; stripe-mock in tests
	// Tolerance is how old a webhook's signature may be; default 5 minutes.
	Tolerance time.Duration
	Logger    *slog.Logger
}

// Client talks to Stripe.
type Client struct {
	api           *client.API
	webhookSecret string
	tolerance     time.Duration
}

// ErrUnavailable wraps a failure to reach Stripe or a refusal of ours by
// Stripe: the payment could not be started; nothing was charged.
var ErrUnavailable = errors.New("stripepay: Stripe did not answer as expected")

// ErrSignature is a webhook whose Stripe-Signature does not verify (absent,
// wrong, or older than the tolerance).
var ErrSignature = errors.New("stripepay: the webhook signature does not verify")

// New makes a client. A secret key is required; the webhook secret is
// required to accept webhooks.
func New(cfg Config) (*Client, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("stripepay: no secret key")
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 30 * time.Second},
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     quietLogger{cfg.Logger},
	}
	if cfg.APIBase != "" {
		bc.URL = stripe.String(strings.TrimRight(cfg.APIBase, "/"))
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, bc),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, bc),
	}
	api := &client.API{}
	api.Init(cfg.SecretKey, backends)
	tol := cfg.Tolerance
	if tol <= 0 {
		tol = webhook.DefaultTolerance
	}
	return &Client{api: api, webhookSecret: cfg.WebhookSecret, tolerance: tol}, nil
}

// IdempotencyKey is the Idempotency-Key of the PaymentIntent of a payment:
// however often Portico asks, Stripe makes one PaymentIntent per payment.
func IdempotencyKey(paymentID uuid.UUID) string { return "portico-payment-" + paymentID.String() }

// IntentRequest is a card payment to start.
type IntentRequest struct {
	PaymentID   uuid.UUID
	PatientID   uuid.UUID
	ClinicID    uuid.UUID
	InvoiceID   *uuid.UUID
	AmountCents int64
	Currency    string // ISO 4217, any case
	// Description appears in the Stripe dashboard and on the payer's
	// statement details: the clinic's name, never the patient's.
	Description string
}

// Intent is a created PaymentIntent.
type Intent struct {
	ID           string
	ClientSecret string // for the portal only; never stored
}

// Metadata keys on the PaymentIntent (Stripe copies them to its charges).
const (
	MetaPaymentID = "payment_id"
	MetaPatientID = "patient_id"
	MetaClinicID  = "clinic_id"
	MetaInvoiceID = "invoice_id"
)

// CreatePaymentIntent creates (or, for a payment asked before, finds again
// through the idempotency key) the PaymentIntent of a payment.
func (c *Client) CreatePaymentIntent(ctx context.Context, r IntentRequest) (Intent, error) {
	params := &stripe.PaymentIntentParams{
		Amount:                  stripe.Int64(r.AmountCents),
		Currency:                stripe.String(strings.ToLower(r.Currency)),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
	}
	if r.Description != "" {
		params.Description = stripe.String(r.Description)
	}
	params.Context = ctx
	params.SetIdempotencyKey(IdempotencyKey(r.PaymentID))
	params.AddMetadata(MetaPaymentID, r.PaymentID.String())
	params.AddMetadata(MetaPatientID, r.PatientID.String())
	params.AddMetadata(MetaClinicID, r.ClinicID.String())
	if r.InvoiceID != nil {
		params.AddMetadata(MetaInvoiceID, r.InvoiceID.String())
	}
	pi, err := c.api.PaymentIntents.New(params)
	if err != nil {
		return Intent{}, fmt.Errorf("%w: create PaymentIntent: %s", ErrUnavailable, describe(err))
	}
	if pi.ID == "" || pi.ClientSecret == "" {
		return Intent{}, fmt.Errorf("%w: a PaymentIntent without id or client secret", ErrUnavailable)
	}
	return Intent{ID: pi.ID, ClientSecret: pi.ClientSecret}, nil
}

// describe is a Stripe error without anything secret: its type, code and
// request id.
func describe(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s %s (status %d, request %s)", se.Type, se.Code, se.HTTPStatusCode, se.RequestID)
	}
	return err.Error()
}

// Event kinds Portico acts on.
const (
	EventSucceeded = "payment_intent.succeeded"
	EventFailed    = "payment_intent.payment_failed"
	EventRefunded  = "charge.refunded"
)

// Outcome is what a verified webhook says about one of our payments.
type Outcome struct {
	EventID string
	Type    string // one of the Event* kinds, or another Stripe type (ignored)
	Created time.Time
	// From the metadata Portico put on the PaymentIntent (and Stripe copied
	// to the charge); a zero PaymentID means the object carries none.
	PaymentID       uuid.UUID
	PatientID       uuid.UUID
	ClinicID        uuid.UUID
	InvoiceID       *uuid.UUID
	PaymentIntentID string
	ChargeID        string
	// AmountCents is the amount received (succeeded) or charged (refunded);
	// RefundedCents the total refunded so far (refunded).
	AmountCents    int64
	RefundedCents  int64
	Currency       string // upper case
	CardBrand      string
	CardLast4      string
	FailureCode    string
	FailureMessage string
}

// Verify checks a webhook's Stripe-Signature header against the webhook
// secret (and that it is recent), then reads the event. A payload that
// does not verify is ErrSignature.
func (c *Client) Verify(payload []byte, signature string) (Outcome, error) {
	if c.webhookSecret == "" {
		return Outcome{}, fmt.Errorf("%w: no webhook secret is configured", ErrSignature)
	}
	ev, err := webhook.ConstructEventWithOptions(payload, signature, c.webhookSecret, webhook.ConstructEventOptions{
		Tolerance: c.tolerance,
		// The endpoint's API version is set in the Stripe dashboard; the
		// fields read here are the same across recent versions.
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return read(ev)
}

// ErrMalformed is a verified event Portico cannot read.
var ErrMalformed = errors.New("stripepay: the event cannot be read")

func read(ev stripe.Event) (Outcome, error) {
	o := Outcome{EventID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC()}
	if ev.ID == "" || ev.Data == nil {
		return o, fmt.Errorf("%w: no id or data", ErrMalformed)
	}
	var meta map[string]string
	switch o.Type {
	case EventSucceeded, EventFailed:
		var pi stripe.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil || pi.ID == "" {
			return o, fmt.Errorf("%w: not a PaymentIntent", ErrMalformed)
		}
		o.PaymentIntentID, meta = pi.ID, pi.Metadata
		o.AmountCents, o.Currency = pi.AmountReceived, strings.ToUpper(string(pi.Currency))
		if o.Type == EventFailed {
			o.AmountCents = pi.Amount
		}
		if ch := pi.LatestCharge; ch != nil {
			o.ChargeID = ch.ID
			cardOf(&o, ch)
		}
		if e := pi.LastPaymentError; e != nil {
			o.FailureCode = string(e.Code)
			if e.DeclineCode != "" {
				o.FailureCode = string(e.DeclineCode)
			}
			o.FailureMessage = e.Msg
		}
	case EventRefunded:
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil || ch.ID == "" {
			return o, fmt.Errorf("%w: not a Charge", ErrMalformed)
		}
		o.ChargeID, meta = ch.ID, ch.Metadata
		if ch.PaymentIntent != nil {
			o.PaymentIntentID = ch.PaymentIntent.ID
			if len(meta) == 0 {
				meta = ch.PaymentIntent.Metadata
			}
		}
		o.AmountCents, o.RefundedCents, o.Currency = ch.AmountCaptured, ch.AmountRefunded, strings.ToUpper(string(ch.Currency))
		if o.AmountCents == 0 {
			o.AmountCents = ch.Amount
		}
		cardOf(&o, &ch)
	default:
		return o, nil
	}
	o.PaymentID, _ = uuid.Parse(meta[MetaPaymentID])
	o.PatientID, _ = uuid.Parse(meta[MetaPatientID])
	o.ClinicID, _ = uuid.Parse(meta[MetaClinicID])
	if id, err := uuid.Parse(meta[MetaInvoiceID]); err == nil {
		o.InvoiceID = &id
	}
	return o, nil
}

func cardOf(o *Outcome, ch *stripe.Charge) {
	if ch.PaymentMethodDetails != nil && ch.PaymentMethodDetails.Card != nil {
		o.CardBrand, o.CardLast4 = string(ch.PaymentMethodDetails.Card.Brand), ch.PaymentMethodDetails.Card.Last4
	}
}

// CardOfCharge looks up the card brand and last 4 digits of a charge, for
// a success event whose PaymentIntent did not carry its charge expanded.
// Best effort: empty on any failure.
func (c *Client) CardOfCharge(ctx context.Context, chargeID string) (brand, last4 string) {
	if chargeID == "" {
		return "", ""
	}
	params := &stripe.ChargeParams{}
	params.Context = ctx
	ch, err := c.api.Charges.Get(chargeID, params)
	if err != nil || ch.PaymentMethodDetails == nil || ch.PaymentMethodDetails.Card == nil {
		return "", ""
	}
	return string(ch.PaymentMethodDetails.Card.Brand), ch.PaymentMethodDetails.Card.Last4
}

// quietLogger passes stripe-go's errors and warnings to slog; its info and
// debug lines (every request) are dropped. stripe-go never logs the key.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) logger() *slog.Logger {
	if q.l != nil {
		return q.l
	}
	return slog.Default()
}
func (q quietLogger) Debugf(string, ...interface{}) {}
func (q quietLogger) Infof(string, ...interface{})  {}
func (q quietLogger) Warnf(format string, v ...interface{}) {
	q.logger().Warn("stripe: " + fmt.Sprintf(format, v...))
}
func (q quietLogger) Errorf(format string, v ...interface{}) {
	q.logger().Error("stripe: " + fmt.Sprintf(format, v...))
}
