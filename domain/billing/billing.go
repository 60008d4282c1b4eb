// Package billing is a patient's account with the clinic: the invoices
// staff issue, the payments made against them (online by card through
// Stripe, or at the desk), and Stripe's refunds. All of one patient's
// billing lives in one stream, so the account's rules — a balance per
// currency, no payment beyond it unless the clinic allows prepayment, a
// paid invoice cannot be voided, each payment recorded once — are decided
// against everything that happened, not against a read model that may lag.
//
// Money is int64 minor units ("cents") with an ISO 4217 currency. The
// balance of a currency is invoices − payments + refunds: positive is owed
// by the patient, negative is credit.
package billing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
)

// Category is the event stream category of patient accounts:
// billing-<patient_id>.
const Category = "billing"

// Limits.
const (
	MaxLines       = 100
	MaxDescription = 200
	// MaxAmountCents bounds any one amount (a line, an invoice, a payment):
	// ten million in major units, far from int64's limits when summed.
	MaxAmountCents = 1_000_000_000
	MaxReason      = 500
)

// Methods of payment.
const (
	MethodCard         = "card"          // online, through Stripe
	MethodCash         = "cash"          // at the desk
	MethodCheck        = "check"         // at the desk
	MethodCardTerminal = "card_terminal" // at the desk, the clinic's own terminal
)

// DeskMethods are what staff record at the desk.
var DeskMethods = []string{MethodCash, MethodCheck, MethodCardTerminal}

// Channels a payment comes through.
const (
	ChannelOnline = "online"
	ChannelDesk   = "desk"
)

// Payment states, as the portal and reports show them.
const (
	StatePending   = "pending"   // a card payment started, no outcome yet
	StateFailed    = "failed"    // the last attempt failed; the payer may try again
	StateSucceeded = "succeeded" // the money was received
	StateRefunded  = "refunded"  // succeeded, then refunded in full
)

// Line is one line of an invoice.
type Line struct {
	Description string `json:"description"`
	AmountCents int64  `json:"amount_cents"`
}

// Allocation is the part of a payment (or of a refund) applied to one
// invoice.
type Allocation struct {
	InvoiceID   uuid.UUID `json:"invoice_id"`
	AmountCents int64     `json:"amount_cents"`
}

// InvoiceIssued: staff billed the patient.
type InvoiceIssued struct {
	InvoiceID  uuid.UUID `json:"invoice_id"`
	PatientID  uuid.UUID `json:"patient_id"`
	ClinicID   uuid.UUID `json:"clinic_id"`
	Currency   string    `json:"currency"`
	Lines      []Line    `json:"lines"`
	TotalCents int64     `json:"total_cents"`
	DueDate    string    `json:"due_date"` // YYYY-MM-DD
}

func (InvoiceIssued) EventType() string { return "InvoiceIssued" }

// InvoiceVoided: the invoice no longer counts towards the balance.
type InvoiceVoided struct {
	InvoiceID uuid.UUID `json:"invoice_id"`
	PatientID uuid.UUID `json:"patient_id"`
	Reason    string    `json:"reason,omitempty"`
}

func (InvoiceVoided) EventType() string { return "InvoiceVoided" }

// CardPaymentStarted: a portal user started paying by card; Stripe holds a
// PaymentIntent for it whose metadata carries payment_id. The client
// secret the portal got is never recorded.
type CardPaymentStarted struct {
	PaymentID       uuid.UUID  `json:"payment_id"`
	PatientID       uuid.UUID  `json:"patient_id"`
	ClinicID        uuid.UUID  `json:"clinic_id"`
	AmountCents     int64      `json:"amount_cents"`
	Currency        string     `json:"currency"`
	InvoiceID       *uuid.UUID `json:"invoice_id,omitempty"`
	PaymentIntentID string     `json:"payment_intent_id"`
	StartedBy       uuid.UUID  `json:"started_by"` // the portal user
}

func (CardPaymentStarted) EventType() string { return "CardPaymentStarted" }

// PaymentRecorded (RecordPayment): money was received, online or at the
// desk. Once per payment.
type PaymentRecorded struct {
	PaymentID   uuid.UUID  `json:"payment_id"`
	PatientID   uuid.UUID  `json:"patient_id"`
	ClinicID    uuid.UUID  `json:"clinic_id"`
	AmountCents int64      `json:"amount_cents"`
	Currency    string     `json:"currency"`
	Method      string     `json:"method"`
	Channel     string     `json:"channel"`
	InvoiceID   *uuid.UUID `json:"invoice_id,omitempty"`
	// Allocations: the invoices the payment paid, the named invoice first,
	// then the oldest open ones; what is left is credit.
	Allocations     []Allocation `json:"allocations"`
	CardBrand       string       `json:"card_brand,omitempty"`
	CardLast4       string       `json:"card_last4,omitempty"`
	PaymentIntentID string       `json:"payment_intent_id,omitempty"`
	StripeEventID   string       `json:"stripe_event_id,omitempty"`
	ReceiptNumber   string       `json:"receipt_number"`
	ReceivedAt      time.Time    `json:"received_at"`
}

func (PaymentRecorded) EventType() string { return "PaymentRecorded" }

// PaymentAttemptFailed: Stripe reported a failed card attempt. The payment
// stays open: the payer may try again with the same PaymentIntent.
type PaymentAttemptFailed struct {
	PaymentID       uuid.UUID `json:"payment_id"`
	PatientID       uuid.UUID `json:"patient_id"`
	PaymentIntentID string    `json:"payment_intent_id"`
	StripeEventID   string    `json:"stripe_event_id"`
	FailureCode     string    `json:"failure_code,omitempty"`
	FailureMessage  string    `json:"failure_message,omitempty"`
}

func (PaymentAttemptFailed) EventType() string { return "PaymentAttemptFailed" }

// PaymentRefunded (RefundPayment): Stripe refunded (part of) a payment.
// AmountCents is this refund; RefundedTotalCents all refunds of the
// payment so far.
type PaymentRefunded struct {
	PaymentID          uuid.UUID `json:"payment_id"`
	PatientID          uuid.UUID `json:"patient_id"`
	ClinicID           uuid.UUID `json:"clinic_id"`
	AmountCents        int64     `json:"amount_cents"`
	RefundedTotalCents int64     `json:"refunded_total_cents"`
	Currency           string    `json:"currency"`
	// Allocations are taken back from the invoices, newest first.
	Allocations   []Allocation `json:"allocations"`
	ChargeID      string       `json:"charge_id,omitempty"`
	StripeEventID string       `json:"stripe_event_id,omitempty"`
	RefundedAt    time.Time    `json:"refunded_at"`
}

func (PaymentRefunded) EventType() string { return "PaymentRefunded" }

func init() {
	domain.Register(InvoiceIssued{}, InvoiceVoided{}, CardPaymentStarted{}, PaymentRecorded{}, PaymentAttemptFailed{}, PaymentRefunded{})
}

// Invoice is an invoice as the account knows it.
type Invoice struct {
	InvoiceIssued
	Voided    bool
	PaidCents int64 // allocated payments less refunds
	seq       int
}

// Status is paid, partly_paid, open or void.
func (i *Invoice) Status() string {
	switch {
	case i.Voided:
		return "void"
	case i.PaidCents >= i.TotalCents:
		return "paid"
	case i.PaidCents > 0:
		return "partly_paid"
	}
	return "open"
}

// OpenCents is what is still owed on the invoice.
func (i *Invoice) OpenCents() int64 {
	if i.Voided || i.PaidCents >= i.TotalCents {
		return 0
	}
	return i.TotalCents - i.PaidCents
}

// Payment is a payment as the account knows it.
type Payment struct {
	ID              uuid.UUID
	AmountCents     int64
	Currency        string
	Method          string
	Channel         string
	InvoiceID       *uuid.UUID
	PaymentIntentID string
	State           string
	Recorded        *PaymentRecorded // set once it succeeded
	RefundedCents   int64
	Allocations     []Allocation // what is applied now, refunds taken back
	LastFailure     string
}

// Account is the aggregate: one patient's billing.
type Account struct {
	domain.Root
	PatientID uuid.UUID
	ClinicID  uuid.UUID
	Invoices  map[uuid.UUID]*Invoice
	Payments  map[uuid.UUID]*Payment
	// stripeEvents are the Stripe event ids already acted on.
	stripeEvents map[string]bool
	invoiceSeq   int
}

// Apply is the account's one transition function.
func (a *Account) Apply(e domain.Event) {
	if a.Invoices == nil {
		a.Invoices, a.Payments, a.stripeEvents = map[uuid.UUID]*Invoice{}, map[uuid.UUID]*Payment{}, map[string]bool{}
	}
	switch e := e.(type) {
	case InvoiceIssued:
		a.PatientID, a.ClinicID = e.PatientID, e.ClinicID
		a.invoiceSeq++
		a.Invoices[e.InvoiceID] = &Invoice{InvoiceIssued: e, seq: a.invoiceSeq}
	case InvoiceVoided:
		if inv := a.Invoices[e.InvoiceID]; inv != nil {
			inv.Voided = true
		}
	case CardPaymentStarted:
		a.PatientID, a.ClinicID = e.PatientID, e.ClinicID
		a.Payments[e.PaymentID] = &Payment{ID: e.PaymentID, AmountCents: e.AmountCents, Currency: e.Currency, Method: MethodCard,
			Channel: ChannelOnline, InvoiceID: e.InvoiceID, PaymentIntentID: e.PaymentIntentID, State: StatePending}
	case PaymentRecorded:
		a.PatientID, a.ClinicID = e.PatientID, e.ClinicID
		p := a.payment(e.PaymentID)
		p.AmountCents, p.Currency, p.Method, p.Channel, p.InvoiceID = e.AmountCents, e.Currency, e.Method, e.Channel, e.InvoiceID
		if e.PaymentIntentID != "" {
			p.PaymentIntentID = e.PaymentIntentID
		}
		rec := e
		p.Recorded, p.State = &rec, StateSucceeded
		p.Allocations = slices.Clone(e.Allocations)
		for _, al := range e.Allocations {
			if inv := a.Invoices[al.InvoiceID]; inv != nil {
				inv.PaidCents += al.AmountCents
			}
		}
		a.seen(e.StripeEventID)
	case PaymentAttemptFailed:
		p := a.payment(e.PaymentID)
		if p.State == "" || p.State == StatePending {
			p.State = StateFailed
		}
		if p.PaymentIntentID == "" {
			p.PaymentIntentID = e.PaymentIntentID
		}
		p.LastFailure = e.FailureCode
		a.seen(e.StripeEventID)
	case PaymentRefunded:
		p := a.payment(e.PaymentID)
		p.RefundedCents = e.RefundedTotalCents
		if p.RefundedCents >= p.AmountCents {
			p.State = StateRefunded
		}
		for _, al := range e.Allocations {
			if inv := a.Invoices[al.InvoiceID]; inv != nil {
				inv.PaidCents -= al.AmountCents
			}
			for i := range p.Allocations {
				if p.Allocations[i].InvoiceID == al.InvoiceID {
					p.Allocations[i].AmountCents -= al.AmountCents
				}
			}
		}
		a.seen(e.StripeEventID)
	}
}

func (a *Account) payment(id uuid.UUID) *Payment {
	p := a.Payments[id]
	if p == nil {
		p = &Payment{ID: id}
		a.Payments[id] = p
	}
	return p
}

func (a *Account) seen(stripeEventID string) {
	if stripeEventID != "" {
		a.stripeEvents[stripeEventID] = true
	}
}

// Seen reports whether a Stripe event was acted on already.
func (a *Account) Seen(stripeEventID string) bool { return a.stripeEvents[stripeEventID] }

// Balances are the balance of each currency the account has used:
// invoices (not void) − payments received + refunds.
func (a *Account) Balances() map[string]int64 {
	out := map[string]int64{}
	for _, inv := range a.Invoices {
		if !inv.Voided {
			out[inv.Currency] += inv.TotalCents
		}
	}
	for _, p := range a.Payments {
		if p.Recorded != nil {
			out[p.Currency] += p.RefundedCents - p.AmountCents
		}
	}
	return out
}

// Balance is the balance of one currency.
func (a *Account) Balance(currency string) int64 { return a.Balances()[currency] }

// invoicesInOrder are the account's invoices, oldest first.
func (a *Account) invoicesInOrder() []*Invoice {
	list := make([]*Invoice, 0, len(a.Invoices))
	for _, inv := range a.Invoices {
		list = append(list, inv)
	}
	slices.SortFunc(list, func(x, y *Invoice) int { return x.seq - y.seq })
	return list
}

// ValidAmount checks an amount of money: positive whole minor units, at
// most MaxAmountCents.
func ValidAmount(bad map[string]string, field string, cents int64) {
	if cents <= 0 || cents > MaxAmountCents {
		bad[field] = "a positive whole number of cents, at most " + strconv.Itoa(MaxAmountCents)
	}
}

// checkCurrency wants the clinic's currency, in any letter case.
func checkCurrency(bad map[string]string, given, clinicCurrency string) string {
	c := strings.ToUpper(strings.TrimSpace(given))
	if c != clinicCurrency {
		bad["currency"] = "the clinic's currency, " + clinicCurrency
	}
	return c
}

// Issue decides a new invoice for the patient. A retried command (same
// invoice id) records nothing.
func (a *Account) Issue(e InvoiceIssued, clinicCurrency string, today time.Time) error {
	bad := map[string]string{}
	e.Currency = checkCurrency(bad, e.Currency, clinicCurrency)
	if len(e.Lines) == 0 || len(e.Lines) > MaxLines {
		bad["lines"] = fmt.Sprintf("1 to %d lines", MaxLines)
	}
	lines := make([]Line, 0, len(e.Lines))
	var total int64
	for i, l := range e.Lines {
		l.Description = strings.Join(strings.Fields(l.Description), " ")
		if n := utf8.RuneCountInString(l.Description); n == 0 || n > MaxDescription {
			bad[fmt.Sprintf("lines[%d].description", i)] = fmt.Sprintf("1 to %d characters", MaxDescription)
		}
		ValidAmount(bad, fmt.Sprintf("lines[%d].amount_cents", i), l.AmountCents)
		total += l.AmountCents
		lines = append(lines, l)
	}
	if len(bad) == 0 && total > MaxAmountCents {
		bad["lines"] = "the total must be at most " + strconv.Itoa(MaxAmountCents) + " cents"
	}
	due, err := time.Parse(time.DateOnly, strings.TrimSpace(e.DueDate))
	if err != nil || due.Year() < 2000 || due.After(today.AddDate(10, 0, 0)) {
		bad["due_date"] = "a date (YYYY-MM-DD) within ten years"
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if _, ok := a.Invoices[e.InvoiceID]; ok {
		return nil
	}
	e.Lines, e.TotalCents, e.DueDate = lines, total, due.Format(time.DateOnly)
	domain.Record(a, e)
	return nil
}

// Void takes an invoice off the balance. One with payments applied to it
// cannot be voided (refund them first); voiding again records nothing.
func (a *Account) Void(invoiceID uuid.UUID, reason string) error {
	reason = strings.Join(strings.Fields(reason), " ")
	if utf8.RuneCountInString(reason) > MaxReason {
		return domain.Invalid(map[string]string{"reason": fmt.Sprintf("at most %d characters", MaxReason)})
	}
	inv := a.Invoices[invoiceID]
	if inv == nil {
		return domain.NotFound("invoice")
	}
	if inv.Voided {
		return nil
	}
	if inv.PaidCents > 0 {
		return domain.Conflict("invoice_has_payments", "payments are applied to this invoice; it cannot be voided")
	}
	domain.Record(a, InvoiceVoided{InvoiceID: invoiceID, PatientID: inv.PatientID, Reason: reason})
	return nil
}

// PaymentRequest is a payment someone wants to make.
type PaymentRequest struct {
	AmountCents int64
	Currency    string
	InvoiceID   *uuid.UUID
}

// CheckPayment validates a payment before it is made: a positive amount in
// the clinic's currency, an invoice of this account that is not void, and
// no more than the balance owed unless the clinic allows prepayment. It
// answers the currency as recorded.
func (a *Account) CheckPayment(r PaymentRequest, clinicCurrency string, allowPrepayment bool) (string, error) {
	bad := map[string]string{}
	ValidAmount(bad, "amount_cents", r.AmountCents)
	cur := checkCurrency(bad, r.Currency, clinicCurrency)
	if r.InvoiceID != nil {
		inv := a.Invoices[*r.InvoiceID]
		switch {
		case inv == nil:
			bad["invoice_id"] = "an invoice of this patient"
		case inv.Voided:
			bad["invoice_id"] = "the invoice is void"
		case inv.Currency != cur:
			bad["invoice_id"] = "the invoice is in " + inv.Currency
		}
	}
	if len(bad) > 0 {
		return cur, domain.Invalid(bad)
	}
	if owed := a.Balance(cur); !allowPrepayment && r.AmountCents > owed {
		if owed < 0 {
			owed = 0
		}
		return cur, domain.Invalid(map[string]string{"amount_cents": fmt.Sprintf("at most the balance owed, %d cents (the clinic does not take prepayments)", owed)})
	}
	return cur, nil
}

// StartCardPayment records a card payment started through the portal; a
// retried start of the same payment records nothing.
func (a *Account) StartCardPayment(e CardPaymentStarted) error {
	if _, ok := a.Payments[e.PaymentID]; ok {
		return nil
	}
	domain.Record(a, e)
	return nil
}

// ReceiptNumber is the printed number of a payment's receipt: derived from
// the payment id, so it is the same however often it is computed.
func ReceiptNumber(paymentID uuid.UUID) string {
	return "R-" + strings.ToUpper(strings.ReplaceAll(paymentID.String(), "-", "")[:12])
}

// allocate spreads amount over open invoices of the currency: the named
// invoice first, then the oldest.
func (a *Account) allocate(amount int64, currency string, first *uuid.UUID) []Allocation {
	out := []Allocation{}
	take := func(inv *Invoice) {
		if amount == 0 || inv.Currency != currency {
			return
		}
		if n := min(amount, inv.OpenCents()); n > 0 {
			out = append(out, Allocation{InvoiceID: inv.InvoiceID, AmountCents: n})
			amount -= n
		}
	}
	if first != nil {
		if inv := a.Invoices[*first]; inv != nil {
			take(inv)
		}
	}
	for _, inv := range a.invoicesInOrder() {
		if first != nil && inv.InvoiceID == *first {
			continue
		}
		take(inv)
	}
	return out
}

// Record records that money was received (RecordPayment). It is decided
// once per payment: a payment that succeeded already, or a Stripe event
// acted on already, records nothing, and answers false.
func (a *Account) Record(e PaymentRecorded) (bool, error) {
	bad := map[string]string{}
	ValidAmount(bad, "amount_cents", e.AmountCents)
	if _, ok := clinic.NormaliseCurrency(e.Currency); !ok {
		bad["currency"] = "an ISO 4217 currency code"
	}
	if e.Channel == ChannelDesk && !slices.Contains(DeskMethods, e.Method) {
		bad["method"] = "one of " + strings.Join(DeskMethods, ", ")
	}
	if len(bad) > 0 {
		return false, domain.Invalid(bad)
	}
	if (e.StripeEventID != "" && a.Seen(e.StripeEventID)) || (a.Payments[e.PaymentID] != nil && a.Payments[e.PaymentID].Recorded != nil) {
		return false, nil
	}
	e.Currency, _ = clinic.NormaliseCurrency(e.Currency)
	e.Allocations = a.allocate(e.AmountCents, e.Currency, e.InvoiceID)
	e.ReceiptNumber = ReceiptNumber(e.PaymentID)
	e.ReceivedAt = e.ReceivedAt.UTC().Truncate(time.Microsecond)
	domain.Record(a, e)
	return true, nil
}

// AttemptFailed records a failed card attempt once per Stripe event.
func (a *Account) AttemptFailed(e PaymentAttemptFailed) bool {
	if a.Seen(e.StripeEventID) {
		return false
	}
	domain.Record(a, e)
	return true
}

// Refund records Stripe's refunds of a payment that succeeded: refunded
// is the total refunded so far, as Stripe reports it, so a repeated or a
// late, smaller report records nothing. It answers false when nothing was
// recorded.
func (a *Account) Refund(paymentID uuid.UUID, refundedTotal int64, chargeID, stripeEventID string, at time.Time) (bool, error) {
	if stripeEventID != "" && a.Seen(stripeEventID) {
		return false, nil
	}
	p := a.Payments[paymentID]
	if p == nil || p.Recorded == nil {
		return false, domain.Conflict("payment_not_succeeded", "the payment has not succeeded (yet)")
	}
	refundedTotal = min(refundedTotal, p.AmountCents)
	if refundedTotal <= p.RefundedCents {
		return false, nil
	}
	amount := refundedTotal - p.RefundedCents
	// Take the refund back from the invoices the payment paid, the last
	// first; what the payment left as credit is refunded before them.
	applied := int64(0)
	for _, al := range p.Allocations {
		applied += al.AmountCents
	}
	credit := p.AmountCents - p.RefundedCents - applied
	fromInvoices := max(amount-max(credit, 0), 0)
	back := []Allocation{}
	for i := len(p.Allocations) - 1; i >= 0 && fromInvoices > 0; i-- {
		if n := min(fromInvoices, p.Allocations[i].AmountCents); n > 0 {
			back = append(back, Allocation{InvoiceID: p.Allocations[i].InvoiceID, AmountCents: n})
			fromInvoices -= n
		}
	}
	domain.Record(a, PaymentRefunded{
		PaymentID: paymentID, PatientID: a.PatientID, ClinicID: a.ClinicID, AmountCents: amount, RefundedTotalCents: refundedTotal,
		Currency: p.Currency, Allocations: back, ChargeID: chargeID, StripeEventID: stripeEventID, RefundedAt: at.UTC().Truncate(time.Microsecond),
	})
	return true, nil
}
