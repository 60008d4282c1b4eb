package clinic_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
)

func registered(t *testing.T) *clinic.Clinic {
	t.Helper()
	c := &clinic.Clinic{}
	if err := c.Register(uuid.New(), "Harbor Therapy", uuid.New()); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetContactTidiesAndRecordsChangesOnly(t *testing.T) {
	c := registered(t)
	in := clinic.Contact{Phone: " +1  555 010 2030 ", Email: " Desk@Harbor.example ", Text: "Open 8–5.\r\n\r\n\r\n  Ask for Renée. "}
	if err := c.SetContact(in); err != nil {
		t.Fatal(err)
	}
	want := clinic.Contact{Phone: "+1 555 010 2030", Email: "desk@harbor.example", Text: "Open 8–5.\n\nAsk for Renée."}
	if c.Contact != want {
		t.Errorf("contact = %+v, want %+v", c.Contact, want)
	}
	if err := c.SetContact(in); err != nil {
		t.Fatal(err)
	}
	if err := c.SetContact(clinic.Contact{}); err != nil || c.Contact != (clinic.Contact{}) {
		t.Errorf("clearing: %v %+v", err, c.Contact)
	}
	if n := len(c.Pending()); n != 3 {
		t.Errorf("%d events, want Registered and two ContactSet (the same contact again records nothing)", n)
	}
}

func TestSetContactRefusesBadInput(t *testing.T) {
	for field, in := range map[string]clinic.Contact{
		"phone": {Phone: "call us"},
		"email": {Email: "not an address"},
		"text":  {Text: strings.Repeat("t", 1001)},
	} {
		c := registered(t)
		err := c.SetContact(in)
		if de, ok := domain.AsError(err); !ok || de.Fields[field] == "" {
			t.Errorf("SetContact(%s) = %v, want validation_failed on %s", field, err, field)
		}
	}
	if err := (&clinic.Clinic{}).SetContact(clinic.Contact{Phone: "555 0100"}); err == nil {
		t.Error("a contact for no clinic")
	}
}
