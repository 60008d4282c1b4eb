package clinic

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

func TestOptionsDefaultsAndChanges(t *testing.T) {
	c := &Clinic{}
	if err := c.SetOptions(DefaultOptions()); err == nil {
		t.Fatal("options of no clinic accepted")
	}
	if err := c.Register(uuid.New(), "Harbor", uuid.New()); err != nil {
		t.Fatal(err)
	}
	if o := c.CurrentOptions(); len(o.HiddenDocumentTypes) != 0 || !o.ShowBalanceAndInvoices || o.PaymentProcessingEnabled {
		t.Fatalf("defaults = %+v", o)
	}
	if err := c.SetOptions(DefaultOptions()); err != nil || len(c.Pending()) != 1 {
		t.Fatalf("the defaults again = %v, %d events", err, len(c.Pending()))
	}
	err := c.SetOptions(Options{HiddenDocumentTypes: []string{"letter", "x-ray"}})
	if de, ok := domain.AsError(err); !ok || de.Fields["hidden_document_types"] == "" {
		t.Fatalf("unknown type = %v", err)
	}
	if err := c.SetOptions(Options{HiddenDocumentTypes: []string{"letter", "evaluation", "letter"}, ShowBalanceAndInvoices: true}); err != nil {
		t.Fatal(err)
	}
	if o := c.CurrentOptions(); !slices.Equal(o.HiddenDocumentTypes, []string{"evaluation", "letter"}) || len(c.Pending()) != 2 {
		t.Fatalf("options = %+v after %d events", o, len(c.Pending()))
	}
	// CurrentOptions is a copy.
	c.CurrentOptions().HiddenDocumentTypes[0] = "other"
	if c.CurrentOptions().HiddenDocumentTypes[0] != "evaluation" {
		t.Fatal("CurrentOptions shares its slice")
	}
}
