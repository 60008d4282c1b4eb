// Package emailclaim keeps one account per email address. An address is
// claimed by appending to a stream named after the normalised address with
// "no stream" expected, so two concurrent claims cannot both win, whatever the
// event store.
package emailclaim

import (
	"net/mail"
	"strings"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of email claims.
const Category = "emailclaim"

// namespace roots the stream ids of claims. The address itself never appears
// in a stream name (names reach logs); its UUIDv5 does.
var namespace = uuid.MustParse("0b0e5c7e-1a53-5b8e-a2f5-6d3c2f4e9a10")

// Normalise lower-cases and trims an address, and checks its shape.
func Normalise(email string) (string, bool) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > 254 {
		return "", false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", false
	}
	return email, true
}

// StreamID is the claim stream's id for a normalised address.
func StreamID(normalised string) string {
	return uuid.NewSHA1(namespace, []byte(normalised)).String()
}

// Claimed: an account took an email address.
type Claimed struct {
	AccountID   uuid.UUID `json:"account_id"`
	AccountKind string    `json:"account_kind"` // staff or portal
}

func (Claimed) EventType() string { return "EmailClaimed" }

func init() { domain.Register(Claimed{}) }

// Claim is the aggregate of one address.
type Claim struct {
	domain.Root
	AccountID   uuid.UUID
	AccountKind string
}

// Apply is the claim's one transition function.
func (c *Claim) Apply(e domain.Event) {
	if e, ok := e.(Claimed); ok {
		c.AccountID, c.AccountKind = e.AccountID, e.AccountKind
	}
}

// Take claims the address for an account. Claiming it again for the same
// account changes nothing.
func (c *Claim) Take(accountID uuid.UUID, kind string) error {
	if c.AccountID == accountID {
		return nil
	}
	if c.AccountID != uuid.Nil {
		return domain.Conflict("email_in_use", "this email address belongs to another account")
	}
	domain.Record(c, Claimed{AccountID: accountID, AccountKind: kind})
	return nil
}
