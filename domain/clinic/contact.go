package clinic

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/emailclaim"
)

// Contact is how portal users reach the clinic, as the portal handout
// prints it. Every part is optional; an empty Contact clears it.
type Contact struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
	// Text is free text: office hours, whom to ask, where to park.
	Text string `json:"text,omitempty"`
}

// Limits of a contact, in characters.
const (
	MaxContactPhone = 40
	MaxContactText  = 1000
)

// ContactSet: an administrator set how portal users reach the clinic.
type ContactSet struct {
	ClinicID uuid.UUID `json:"clinic_id"`
	Contact
}

func (ContactSet) EventType() string { return "ClinicContactSet" }

func init() { domain.Register(ContactSet{}) }

// SetContact decides the clinic's contact; the same contact again records
// nothing.
func (c *Clinic) SetContact(in Contact) error {
	bad := map[string]string{}
	out := Contact{Phone: strings.Join(strings.Fields(in.Phone), " ")}
	if n := utf8.RuneCountInString(out.Phone); n > MaxContactPhone || (n > 0 && !strings.ContainsAny(out.Phone, "0123456789")) {
		bad["phone"] = "a telephone number of at most 40 characters"
	}
	if e := strings.TrimSpace(in.Email); e != "" {
		norm, ok := emailclaim.Normalise(e)
		if !ok {
			bad["email"] = "a valid email address"
		}
		out.Email = norm
	}
	out.Text = contactText(in.Text)
	if utf8.RuneCountInString(out.Text) > MaxContactText {
		bad["text"] = "at most 1000 characters"
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if domain.IsNew(c) {
		return domain.NotFound("clinic")
	}
	if c.Contact == out {
		return nil
	}
	domain.Record(c, ContactSet{ClinicID: c.ID, Contact: out})
	return nil
}

// contactText keeps line breaks and trims each line; runs of blank lines
// become one and other control characters go.
func contactText(v string) string {
	v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n")
	var lines []string
	blank := false
	for _, l := range strings.Split(v, "\n") {
		l = strings.Join(strings.FieldsFunc(l, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
		if l == "" {
			blank = len(lines) > 0
			continue
		}
		if blank {
			lines = append(lines, "")
			blank = false
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}
