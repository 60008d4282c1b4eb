// Package portaluser is the portal account of a patient, parent or other
// person a clinic lets into the portal, and the grants that link it to
// patients. Every access check of a portal request reads this stream, so a
// revoked grant ends access on the very next request.
package portaluser

import (
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of portal users.
const Category = "portaluser"

// Permissions a grant may give; a grant gives all of them unless staff
// narrow it.
const (
	PermDocuments  = "documents"
	PermActivities = "activities"
	PermForms      = "forms"
	PermBilling    = "billing"
)

// AllPermissions is the default of a new grant.
var AllPermissions = []string{PermDocuments, PermActivities, PermForms, PermBilling}

// RelationshipSelf is the relationship of a patient to their own record.
const RelationshipSelf = "self"

// Created: a portal account came to be for an email address (claimed first,
// domain/emailclaim).
type Created struct {
	PortalUserID uuid.UUID `json:"portal_user_id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
}

func (Created) EventType() string { return "PortalUserCreated" }

// AccessGranted: staff linked the account to a patient.
type AccessGranted struct {
	PortalUserID uuid.UUID `json:"portal_user_id"`
	PatientID    uuid.UUID `json:"patient_id"`
	ClinicID     uuid.UUID `json:"clinic_id"`
	Relationship string    `json:"relationship"`
	// ContactID is the chart contact the account belongs to; nil for the
	// patient themself or a portal user who is no contact.
	ContactID   *uuid.UUID `json:"contact_id,omitempty"`
	Permissions []string   `json:"permissions"`
}

func (AccessGranted) EventType() string { return "PortalAccessGranted" }

// AccessRevoked: staff ended the account's access to a patient.
type AccessRevoked struct {
	PortalUserID uuid.UUID `json:"portal_user_id"`
	PatientID    uuid.UUID `json:"patient_id"`
	ClinicID     uuid.UUID `json:"clinic_id"`
}

func (AccessRevoked) EventType() string { return "PortalAccessRevoked" }

// Invited: an invitation (its own stream, domain/invitation) was issued to
// the account. The newest one for a patient supersedes the older.
type Invited struct {
	PortalUserID uuid.UUID `json:"portal_user_id"`
	InvitationID uuid.UUID `json:"invitation_id"`
	PatientID    uuid.UUID `json:"patient_id"`
	ClinicID     uuid.UUID `json:"clinic_id"`
}

func (Invited) EventType() string { return "PortalUserInvited" }

// PasswordSet: the account's password was set, by accepting an invitation,
// by a password reset or by the signed-in user changing it. The hash lives in the credentials table; the event
// says only how and when.
type PasswordSet struct {
	PortalUserID uuid.UUID  `json:"portal_user_id"`
	Via          string     `json:"via"` // invitation, reset or change
	InvitationID *uuid.UUID `json:"invitation_id,omitempty"`
	ResetID      *uuid.UUID `json:"reset_id,omitempty"`
}

func (PasswordSet) EventType() string { return "PortalPasswordSet" }

// PasswordResetRequested: "Forgot password" for an active account. The link's
// token is derived from ResetID and ExpiresAt under the server key; it is
// never stored.
type PasswordResetRequested struct {
	PortalUserID uuid.UUID `json:"portal_user_id"`
	ResetID      uuid.UUID `json:"reset_id"`
	ExpiresAt    time.Time `json:"expires_at"`
}

func (PasswordResetRequested) EventType() string { return "PortalPasswordResetRequested" }

// ResetEmailDelivered: the reset email left for the mail server.
type ResetEmailDelivered struct {
	PortalUserID uuid.UUID `json:"portal_user_id"`
	ResetID      uuid.UUID `json:"reset_id"`
}

func (ResetEmailDelivered) EventType() string { return "PortalPasswordResetEmailDelivered" }

func init() {
	domain.Register(Created{}, AccessGranted{}, AccessRevoked{}, Invited{}, PasswordSet{},
		PasswordResetRequested{}, ResetEmailDelivered{})
}

// ResetValidity is how long a reset link works.
const ResetValidity = time.Hour

// Grant links the account to one patient.
type Grant struct {
	PatientID    uuid.UUID
	ClinicID     uuid.UUID
	Relationship string
	ContactID    *uuid.UUID
	Permissions  []string
	Revoked      bool
	// LatestInvitation is the newest invitation for this patient, if any.
	LatestInvitation uuid.UUID
}

// Allows reports whether the grant gives a permission.
func (g Grant) Allows(perm string) bool { return !g.Revoked && slices.Contains(g.Permissions, perm) }

// Reset is a requested password reset.
type Reset struct {
	ID        uuid.UUID
	ExpiresAt time.Time
	Used      bool
	Delivered bool
}

// User is the aggregate.
type User struct {
	domain.Root
	ID          uuid.UUID
	Email       string
	Name        string
	HasPassword bool
	// Grants by patient, revoked ones included.
	Grants map[uuid.UUID]*Grant
	// Order of the patients as granted, so lists are stable.
	Order []uuid.UUID
	// LatestInvitation is the newest invitation of any patient, the one a
	// "Forgot password" of a never-activated account renews.
	LatestInvitation uuid.UUID
	Reset            Reset
}

// Apply is the account's one transition function.
func (u *User) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		u.ID, u.Email, u.Name = e.PortalUserID, e.Email, e.Name
		u.Grants = map[uuid.UUID]*Grant{}
	case AccessGranted:
		g, ok := u.Grants[e.PatientID]
		if !ok {
			g = &Grant{}
			u.Grants[e.PatientID] = g
			u.Order = append(u.Order, e.PatientID)
		}
		latest := g.LatestInvitation
		*g = Grant{PatientID: e.PatientID, ClinicID: e.ClinicID, Relationship: e.Relationship, ContactID: e.ContactID,
			Permissions: slices.Clone(e.Permissions), LatestInvitation: latest}
	case AccessRevoked:
		if g, ok := u.Grants[e.PatientID]; ok {
			g.Revoked = true
		}
	case Invited:
		if g, ok := u.Grants[e.PatientID]; ok {
			g.LatestInvitation = e.InvitationID
		}
		u.LatestInvitation = e.InvitationID
	case PasswordSet:
		u.HasPassword = true
		if e.ResetID != nil && *e.ResetID == u.Reset.ID || e.Via == "change" {
			u.Reset.Used = true
		}
	case PasswordResetRequested:
		u.Reset = Reset{ID: e.ResetID, ExpiresAt: e.ExpiresAt}
	case ResetEmailDelivered:
		if e.ResetID == u.Reset.ID {
			u.Reset.Delivered = true
		}
	}
}

// Active grants, in the order they were first given.
func (u *User) Active() []Grant {
	var out []Grant
	for _, pid := range u.Order {
		if g := u.Grants[pid]; !g.Revoked {
			out = append(out, *g)
		}
	}
	return out
}

// Access is the live grant to a patient, if the account is active and has
// one. Every portal read of a patient's data goes through it.
func (u *User) Access(patientID uuid.UUID) (Grant, bool) {
	if u.Grants == nil || !u.HasPassword {
		return Grant{}, false
	}
	g, ok := u.Grants[patientID]
	if !ok || g.Revoked {
		return Grant{}, false
	}
	return *g, true
}

// Create makes the account.
func (u *User) Create(id uuid.UUID, email, name string) error {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || len(name) > 100 {
		return domain.Invalid(map[string]string{"name": "1 to 100 characters"})
	}
	if !domain.IsNew(u) {
		return nil
	}
	domain.Record(u, Created{PortalUserID: id, Email: email, Name: name})
	return nil
}

// NormalisePermissions checks a requested permission list; nil or empty
// means all.
func NormalisePermissions(perms []string) ([]string, bool) {
	if len(perms) == 0 {
		return slices.Clone(AllPermissions), true
	}
	var out []string
	for _, p := range AllPermissions {
		if slices.Contains(perms, p) {
			out = append(out, p)
		}
	}
	for _, p := range perms {
		if !slices.Contains(AllPermissions, p) {
			return nil, false
		}
	}
	return out, true
}

// Grant links the account to a patient, or updates the link (a re-grant
// after a revocation, a new relationship). The same grant again records
// nothing.
func (u *User) Grant(g Grant) {
	if cur, ok := u.Grants[g.PatientID]; ok && !cur.Revoked && cur.Relationship == g.Relationship &&
		slices.Equal(cur.Permissions, g.Permissions) && equalID(cur.ContactID, g.ContactID) {
		return
	}
	domain.Record(u, AccessGranted{PortalUserID: u.ID, PatientID: g.PatientID, ClinicID: g.ClinicID,
		Relationship: g.Relationship, ContactID: g.ContactID, Permissions: g.Permissions})
}

func equalID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Revoke ends the account's access to a patient. Revoking a revoked grant
// records nothing; there must have been one.
func (u *User) Revoke(patientID uuid.UUID) error {
	g, ok := u.Grants[patientID]
	if !ok {
		return domain.NotFound("portal user")
	}
	if g.Revoked {
		return nil
	}
	domain.Record(u, AccessRevoked{PortalUserID: u.ID, PatientID: patientID, ClinicID: g.ClinicID})
	return nil
}

// NoteInvitation records that an invitation was issued for a patient.
func (u *User) NoteInvitation(invitationID, patientID, clinicID uuid.UUID) {
	if g, ok := u.Grants[patientID]; ok && g.LatestInvitation == invitationID {
		return
	}
	domain.Record(u, Invited{PortalUserID: u.ID, InvitationID: invitationID, PatientID: patientID, ClinicID: clinicID})
}

// ActivateByInvitation records the password set when an invitation was
// accepted.
func (u *User) ActivateByInvitation(invitationID uuid.UUID) {
	id := invitationID
	domain.Record(u, PasswordSet{PortalUserID: u.ID, Via: "invitation", InvitationID: &id})
}

// RequestReset starts a password reset; a newer request replaces the older,
// whose link stops working.
func (u *User) RequestReset(resetID uuid.UUID, now time.Time) {
	domain.Record(u, PasswordResetRequested{PortalUserID: u.ID, ResetID: resetID, ExpiresAt: now.Add(ResetValidity).UTC().Truncate(time.Second)})
}

// Reset refusals, with the codes API.md gives.
var (
	ErrTokenInvalid = &domain.Error{Kind: domain.KindValidation, Code: "token_invalid", Message: "this link is not valid; ask for a new one"}
	ErrTokenExpired = &domain.Error{Kind: domain.KindValidation, Code: "token_expired", Message: "this link has expired; ask for a new one"}
	ErrTokenUsed    = &domain.Error{Kind: domain.KindValidation, Code: "token_used", Message: "this link was used already; ask for a new one"}
)

// CheckReset says whether resetID is the account's current, unused,
// unexpired reset.
func (u *User) CheckReset(resetID uuid.UUID, now time.Time) error {
	switch {
	case domain.IsNew(u) || u.Reset.ID != resetID:
		return ErrTokenInvalid
	case u.Reset.Used:
		return ErrTokenUsed
	case !now.Before(u.Reset.ExpiresAt):
		return ErrTokenExpired
	}
	return nil
}

// CompleteReset checks the reset and records the new password.
func (u *User) CompleteReset(resetID uuid.UUID, now time.Time) error {
	if err := u.CheckReset(resetID, now); err != nil {
		return err
	}
	id := resetID
	domain.Record(u, PasswordSet{PortalUserID: u.ID, Via: "reset", ResetID: &id})
	return nil
}

// ChangePassword records that the signed-in user replaced their password.
// Any reset link still open stops working: it was asked for the old one.
func (u *User) ChangePassword() error {
	if domain.IsNew(u) || !u.HasPassword {
		return domain.NotFound("portal account")
	}
	domain.Record(u, PasswordSet{PortalUserID: u.ID, Via: "change"})
	return nil
}

// NoteResetDelivered records that the reset email was handed to the mail
// server; once is enough.
func (u *User) NoteResetDelivered(resetID uuid.UUID) {
	if u.Reset.ID != resetID || u.Reset.Delivered {
		return
	}
	domain.Record(u, ResetEmailDelivered{PortalUserID: u.ID, ResetID: resetID})
}
