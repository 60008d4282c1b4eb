// Package invitation is one invitation to the portal: issued by staff (or
// renewed by "Forgot password"), delivered by email, then accepted, expired,
// superseded by a newer one, or revoked. Its link works once: acceptance is
// appended at the version the acceptor read, so of two clicks one wins.
package invitation

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of invitations.
const Category = "invitation"

// Validity is how long an invitation link works.
const Validity = 24 * time.Hour

// Issued: an invitation was made. The link's token is derived from the id
// and ExpiresAt under the server key (docs/security.md); it never enters the
// log.
type Issued struct {
	InvitationID uuid.UUID  `json:"invitation_id"`
	PortalUserID uuid.UUID  `json:"portal_user_id"`
	PatientID    uuid.UUID  `json:"patient_id"`
	ClinicID     uuid.UUID  `json:"clinic_id"`
	ContactID    *uuid.UUID `json:"contact_id,omitempty"`
	Email        string     `json:"email"`
	ExpiresAt    time.Time  `json:"expires_at"`
	// Reason is "staff" or "forgot_password" (a renewal).
	Reason             string      `json:"reason"`
	IntakeFormIDs      []uuid.UUID `json:"intake_form_ids,omitempty"`
	IntakeFormsMessage string      `json:"intake_forms_message,omitempty"`
}

func (Issued) EventType() string { return "InvitationIssued" }

// EmailDelivered: the invitation email left for the mail server.
type EmailDelivered struct {
	InvitationID uuid.UUID `json:"invitation_id"`
}

func (EmailDelivered) EventType() string { return "InvitationEmailDelivered" }

// Accepted: the invitee set a password (or, with an active account, signed
// in) through the link.
type Accepted struct {
	InvitationID uuid.UUID `json:"invitation_id"`
	PortalUserID uuid.UUID `json:"portal_user_id"`
}

func (Accepted) EventType() string { return "InvitationAccepted" }

// Superseded: a newer invitation to the same person for the same patient
// replaced this one; its link stops working.
type Superseded struct {
	InvitationID uuid.UUID `json:"invitation_id"`
	By           uuid.UUID `json:"by"`
}

func (Superseded) EventType() string { return "InvitationSuperseded" }

// Revoked: staff ended the invitee's access before the link was used.
type Revoked struct {
	InvitationID uuid.UUID `json:"invitation_id"`
}

func (Revoked) EventType() string { return "InvitationRevoked" }

func init() { domain.Register(Issued{}, EmailDelivered{}, Accepted{}, Superseded{}, Revoked{}) }

// State of an invitation. Expiry is a matter of the clock, not an event.
type State string

const (
	StatePending    State = "pending"
	StateAccepted   State = "accepted"
	StateExpired    State = "expired"
	StateSuperseded State = "superseded"
	StateRevoked    State = "revoked"
)

// Invitation is the aggregate.
type Invitation struct {
	domain.Root
	Issued
	Delivered  bool
	Accepted   bool
	Superseded bool
	Revoked    bool
}

// Apply is the invitation's one transition function.
func (i *Invitation) Apply(e domain.Event) {
	switch e := e.(type) {
	case Issued:
		i.Issued = e
		i.IntakeFormIDs = slices.Clone(e.IntakeFormIDs)
	case EmailDelivered:
		i.Delivered = true
	case Accepted:
		i.Accepted = true
	case Superseded:
		i.Superseded = true
	case Revoked:
		i.Revoked = true
	}
}

// StateAt is the invitation's state at a time.
func (i *Invitation) StateAt(now time.Time) State {
	switch {
	case i.Accepted:
		return StateAccepted
	case i.Revoked:
		return StateRevoked
	case i.Superseded:
		return StateSuperseded
	case !now.Before(i.ExpiresAt):
		return StateExpired
	}
	return StatePending
}

// Issue decides a new invitation.
func (i *Invitation) Issue(e Issued, now time.Time) error {
	if !domain.IsNew(i) {
		return nil // a retried command
	}
	if len(e.IntakeFormsMessage) > 2000 {
		return domain.Invalid(map[string]string{"intake_forms_message": "at most 2000 characters"})
	}
	if len(e.IntakeFormIDs) > 50 {
		return domain.Invalid(map[string]string{"intake_form_ids": "at most 50 forms"})
	}
	e.ExpiresAt = now.Add(Validity).UTC().Truncate(time.Second)
	domain.Record(i, e)
	return nil
}

// Refusals of a link, with the codes API.md gives.
var (
	ErrTokenInvalid = &domain.Error{Kind: domain.KindValidation, Code: "token_invalid", Message: "this invitation link is not valid"}
	ErrTokenUsed    = &domain.Error{Kind: domain.KindValidation, Code: "token_used", Message: "this invitation link was used already; sign in, or use \"Forgot password\" to get a new link"}
	ErrExpired      = &domain.Error{Kind: domain.KindValidation, Code: "invitation_expired", Message: "this invitation link has expired; use \"Forgot password\" with your email address to get a new one"}
	ErrSuperseded   = &domain.Error{Kind: domain.KindValidation, Code: "invitation_expired", Message: "a newer invitation replaced this one; use the link in the latest email, or \"Forgot password\" to get a new one"}
)

// Accept uses the link.
func (i *Invitation) Accept(now time.Time) error {
	if domain.IsNew(i) {
		return ErrTokenInvalid
	}
	switch i.StateAt(now) {
	case StateAccepted:
		return ErrTokenUsed
	case StateRevoked:
		return ErrTokenInvalid
	case StateSuperseded:
		return ErrSuperseded
	case StateExpired:
		return ErrExpired
	}
	domain.Record(i, Accepted{InvitationID: i.InvitationID, PortalUserID: i.PortalUserID})
	return nil
}

// Supersede retires a pending invitation in favour of a newer one.
func (i *Invitation) Supersede(by uuid.UUID) {
	if domain.IsNew(i) || i.Accepted || i.Superseded || i.Revoked || i.InvitationID == by {
		return
	}
	domain.Record(i, Superseded{InvitationID: i.InvitationID, By: by})
}

// Revoke retires a pending invitation when its access is revoked.
func (i *Invitation) Revoke() {
	if domain.IsNew(i) || i.Accepted || i.Superseded || i.Revoked {
		return
	}
	domain.Record(i, Revoked{InvitationID: i.InvitationID})
}

// NoteDelivered records the email's delivery; once is enough.
func (i *Invitation) NoteDelivered() {
	if domain.IsNew(i) || i.Delivered {
		return
	}
	domain.Record(i, EmailDelivered{InvitationID: i.InvitationID})
}
