// Package staff is the staff account aggregate: a clinic's front desk,
// therapists, billing, administrators and auditors.
package staff

import (
	"strings"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of staff accounts.
const Category = "staff"

// Role decides what a staff member may do.
type Role string

const (
	RoleAdmin   Role = "admin"
	RoleStaff   Role = "staff"
	RoleBilling Role = "billing"
	RoleAuditor Role = "auditor"
)

// ParseRole accepts the four roles of API.md.
func ParseRole(s string) (Role, bool) {
	switch r := Role(s); r {
	case RoleAdmin, RoleStaff, RoleBilling, RoleAuditor:
		return r, true
	}
	return "", false
}

// AccountCreated: a clinic gained a staff account. The email was claimed
// first (domain/emailclaim).
type AccountCreated struct {
	StaffID  uuid.UUID `json:"staff_id"`
	ClinicID uuid.UUID `json:"clinic_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     Role      `json:"role"`
}

func (AccountCreated) EventType() string { return "StaffAccountCreated" }

// PasswordSet: the account's password was set. The hash lives in the
// credentials table, never in an event; the event says only when, and Via
// "change" when the signed-in member changed it (empty: set at creation).
type PasswordSet struct {
	StaffID uuid.UUID `json:"staff_id"`
	Via     string    `json:"via,omitempty"`
}

func (PasswordSet) EventType() string { return "StaffPasswordSet" }

func init() { domain.Register(AccountCreated{}, PasswordSet{}) }

// Account is the aggregate.
type Account struct {
	domain.Root
	ID          uuid.UUID
	ClinicID    uuid.UUID
	Email       string
	Name        string
	Role        Role
	HasPassword bool
}

// Apply is the account's one transition function.
func (a *Account) Apply(e domain.Event) {
	switch e := e.(type) {
	case AccountCreated:
		a.ID, a.ClinicID, a.Email, a.Name, a.Role = e.StaffID, e.ClinicID, e.Email, e.Name, e.Role
	case PasswordSet:
		a.HasPassword = true
	}
}

// Create decides a new staff account with a normalised, already claimed email.
func (a *Account) Create(id, clinicID uuid.UUID, email, name string, role Role) error {
	name = strings.TrimSpace(name)
	bad := map[string]string{}
	if _, ok := ParseRole(string(role)); !ok {
		bad["role"] = "one of admin, staff, billing, auditor"
	}
	if len(name) > 200 {
		bad["name"] = "at most 200 characters"
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if !domain.IsNew(a) {
		return domain.Conflict("conflict", "staff account %s exists already", id)
	}
	domain.Record(a, AccountCreated{StaffID: id, ClinicID: clinicID, Email: email, Name: name, Role: role})
	return nil
}

// ChangePassword records that the signed-in member replaced their password.
func (a *Account) ChangePassword() error {
	if a.ID == uuid.Nil || !a.HasPassword {
		return domain.NotFound("staff account")
	}
	domain.Record(a, PasswordSet{StaffID: a.ID, Via: "change"})
	return nil
}

// SetPassword records that a password was stored for the account.
func (a *Account) SetPassword() error {
	if a.ID == uuid.Nil {
		return domain.NotFound("staff account")
	}
	domain.Record(a, PasswordSet{StaffID: a.ID})
	return nil
}
