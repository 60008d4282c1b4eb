package clinic

import (
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/document"
)

// Options are the clinic's Clinic Options: what its portal shows.
type Options struct {
	// HiddenDocumentTypes are document types (domain/document.Types) the
	// portal does not show, whenever the documents were completed.
	HiddenDocumentTypes []string `json:"hidden_document_types"`
	// ShowBalanceAndInvoices: portal users see the balance and invoices.
	ShowBalanceAndInvoices bool `json:"show_balance_and_invoices"`
	// PaymentProcessingEnabled: the clinic takes card payments online.
	PaymentProcessingEnabled bool `json:"payment_processing_enabled"`
	// AllowPrepayment: a payment may be more than the balance owed; the
	// rest is credit on the patient's account.
	AllowPrepayment bool `json:"allow_prepayment"`
	// Currency is the ISO 4217 code of the currency the clinic bills in
	// (upper case); events from before the option existed mean USD.
	Currency string `json:"currency"`
}

// DefaultCurrency is a clinic's currency until an administrator sets one.
const DefaultCurrency = "USD"

// NormaliseCurrency is an ISO 4217 code in upper case, and whether the
// text is one (three ASCII letters).
func NormaliseCurrency(c string) (string, bool) {
	c = strings.ToUpper(strings.TrimSpace(c))
	if len(c) != 3 {
		return c, false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return c, false
		}
	}
	return c, true
}

// DefaultOptions are a clinic's options until an administrator changes
// them: nothing hidden, balance and invoices shown, no online payments.
func DefaultOptions() Options {
	return Options{HiddenDocumentTypes: []string{}, ShowBalanceAndInvoices: true, Currency: DefaultCurrency}
}

// OptionsChanged: an administrator changed the Clinic Options. The event
// holds all of them, as they are from then on.
type OptionsChanged struct {
	ClinicID uuid.UUID `json:"clinic_id"`
	Options
}

func (OptionsChanged) EventType() string { return "ClinicOptionsChanged" }

func init() { domain.Register(OptionsChanged{}) }

// CurrentOptions are the clinic's options now.
func (c *Clinic) CurrentOptions() Options {
	if c.options == nil {
		return DefaultOptions()
	}
	o := *c.options
	o.HiddenDocumentTypes = slices.Clone(o.HiddenDocumentTypes)
	return o
}

func (c *Clinic) applyOptions(e OptionsChanged) {
	o := e.Options
	if o.HiddenDocumentTypes == nil {
		o.HiddenDocumentTypes = []string{}
	}
	if o.Currency == "" {
		o.Currency = DefaultCurrency
	}
	c.options = &o
}

// SetOptions decides new Clinic Options; the same options again record
// nothing. Hidden types are kept sorted and once each.
func (c *Clinic) SetOptions(o Options) error {
	hidden := []string{}
	for _, t := range o.HiddenDocumentTypes {
		if !document.KnownType(t) {
			return domain.Invalid(map[string]string{"hidden_document_types": "document types among " + strings.Join(document.Types, ", ")})
		}
		if !slices.Contains(hidden, t) {
			hidden = append(hidden, t)
		}
	}
	slices.Sort(hidden)
	o.HiddenDocumentTypes = hidden
	if o.Currency == "" {
		o.Currency = DefaultCurrency
	}
	cur, ok := NormaliseCurrency(o.Currency)
	if !ok {
		return domain.Invalid(map[string]string{"currency": "an ISO 4217 currency code such as USD"})
	}
	o.Currency = cur
	if domain.IsNew(c) {
		return domain.NotFound("clinic")
	}
	now := c.CurrentOptions()
	if slices.Equal(now.HiddenDocumentTypes, o.HiddenDocumentTypes) &&
		now.ShowBalanceAndInvoices == o.ShowBalanceAndInvoices && now.PaymentProcessingEnabled == o.PaymentProcessingEnabled &&
		now.AllowPrepayment == o.AllowPrepayment && now.Currency == o.Currency {
		return nil
	}
	domain.Record(c, OptionsChanged{ClinicID: c.ID, Options: o})
	return nil
}
