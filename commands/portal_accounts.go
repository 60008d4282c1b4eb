package commands

// What the portal-account commands share: finding or creating the account
// of an email address, issuing invitations, and reading accounts for the
// API and the mailer.

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
)

// Staff roles that manage patients and their portal access. Billing staff
// and auditors do not.
var patientManagers = []string{string(staff.RoleAdmin), string(staff.RoleStaff)}

func requireRole(meta Meta, roles []string) error {
	if meta.Actor.Kind != "staff" || !slices.Contains(roles, meta.Actor.Role) {
		return domain.Forbidden("your role may not do this")
	}
	return nil
}

func portalUserStream(id uuid.UUID) string {
	return eventstore.StreamName(portaluser.Category, id.String())
}

func invitationStream(id uuid.UUID) string {
	return eventstore.StreamName(invitation.Category, id.String())
}

func newPortalUser() domain.Aggregate { return &portaluser.User{} }

// portalAccountFor finds the portal account of an email address, creating
// it (claim first, so two concurrent creations cannot both win) when there
// is none. An address that belongs to a staff account is refused.
func (h *Handlers) portalAccountFor(ctx context.Context, meta Meta, clinicID uuid.UUID, email, name string) (*portaluser.User, error) {
	claim := &emailclaim.Claim{}
	claimStream := eventstore.StreamName(emailclaim.Category, emailclaim.StreamID(email))
	if err := h.load(ctx, claimStream, claim); err != nil {
		return nil, err
	}
	if claim.AccountID != uuid.Nil && claim.AccountKind != "portal" {
		return nil, domain.Conflict("email_in_use", "this email address belongs to a staff account")
	}
	id := claim.AccountID
	if id == uuid.Nil {
		// From the command id, so a retried request makes the same account.
		id = uuid.NewSHA1(bootstrapNamespace, []byte("portaluser:"+meta.CommandID+":"+email))
		if err := claim.Take(id, "portal"); err != nil {
			return nil, err
		}
		if err := h.save(ctx, meta, clinicID, claimStream, claim); err != nil {
			if de, ok := domain.AsError(err); ok && de.Code == "concurrent_update" {
				// Someone claimed it a moment ago: use theirs.
				return h.portalAccountFor(ctx, meta, clinicID, email, name)
			}
			return nil, err
		}
	}
	agg, err := h.update(ctx, meta, clinicID, portalUserStream(id), newPortalUser, func(a domain.Aggregate) error {
		return a.(*portaluser.User).Create(id, email, name)
	})
	if err != nil {
		return nil, err
	}
	return agg.(*portaluser.User), nil
}

// invitee is whom an invitation goes to, on a patient's chart.
type invitee struct {
	email, name, relationship string
	contactID                 *uuid.UUID
}

// inviteeOf reads the invitee off the chart: a contact, or (contactID nil)
// the patient themself.
func inviteeOf(p *patient.Patient, contactID *uuid.UUID) (invitee, error) {
	if contactID == nil {
		if p.Email == "" {
			return invitee{}, domain.Invalid(map[string]string{"contact_id": "the patient has no email address on the chart; invite a contact, or add the patient as a portal user with an email"})
		}
		return invitee{email: p.Email, name: p.FirstName + " " + p.LastName, relationship: portaluser.RelationshipSelf}, nil
	}
	c, ok := p.Contacts[*contactID]
	if !ok {
		return invitee{}, domain.Invalid(map[string]string{"contact_id": "no such contact on this patient's chart"})
	}
	id := c.ID
	return invitee{email: c.Email, name: c.Name, relationship: c.Relationship, contactID: &id}, nil
}

// issueInvitation makes a new invitation of user to patient, notes it on the
// account, and supersedes the patient's previous invitation of that account.
func (h *Handlers) issueInvitation(ctx context.Context, meta Meta, user *portaluser.User, g portaluser.Grant, reason string, forms []uuid.UUID, message string) (uuid.UUID, error) {
	id := uuid.NewSHA1(bootstrapNamespace, []byte("invitation:"+meta.CommandID+":"+g.PatientID.String()+":"+user.ID.String()))
	previous := uuid.Nil
	if cur, ok := user.Grants[g.PatientID]; ok {
		previous = cur.LatestInvitation
	}
	inv := &invitation.Invitation{}
	if err := h.load(ctx, invitationStream(id), inv); err != nil {
		return uuid.Nil, err
	}
	if err := inv.Issue(invitation.Issued{
		InvitationID: id, PortalUserID: user.ID, PatientID: g.PatientID, ClinicID: g.ClinicID,
		ContactID: g.ContactID, Email: user.Email, Reason: reason,
		IntakeFormIDs: forms, IntakeFormsMessage: message,
	}, h.now()); err != nil {
		return uuid.Nil, err
	}
	if err := h.save(ctx, meta, g.ClinicID, invitationStream(id), inv); err != nil {
		return uuid.Nil, err
	}
	if _, err := h.update(ctx, meta, g.ClinicID, portalUserStream(user.ID), newPortalUser, func(a domain.Aggregate) error {
		a.(*portaluser.User).NoteInvitation(id, g.PatientID, g.ClinicID)
		return nil
	}); err != nil {
		return uuid.Nil, err
	}
	if previous != uuid.Nil && previous != id {
		if _, err := h.update(ctx, meta, g.ClinicID, invitationStream(previous), newInvitation, func(a domain.Aggregate) error {
			a.(*invitation.Invitation).Supersede(id)
			return nil
		}); err != nil {
			return uuid.Nil, err
		}
	}
	return id, nil
}

func newInvitation() domain.Aggregate { return &invitation.Invitation{} }

// PortalUser is a portal account as its stream says now, or not_found.
func (h *Handlers) PortalUser(ctx context.Context, id uuid.UUID) (*portaluser.User, error) {
	u := &portaluser.User{}
	if id == uuid.Nil {
		return nil, domain.NotFound("portal user")
	}
	if err := h.load(ctx, portalUserStream(id), u); err != nil {
		return nil, err
	}
	if domain.IsNew(u) {
		return nil, domain.NotFound("portal user")
	}
	return u, nil
}

// Invitation is an invitation as its stream says now, or not_found.
func (h *Handlers) Invitation(ctx context.Context, id uuid.UUID) (*invitation.Invitation, error) {
	inv := &invitation.Invitation{}
	if err := h.load(ctx, invitationStream(id), inv); err != nil {
		return nil, err
	}
	if domain.IsNew(inv) {
		return nil, domain.NotFound("invitation")
	}
	return inv, nil
}

// ClinicName is the name of a clinic, for emails.
func (h *Handlers) ClinicName(ctx context.Context, id uuid.UUID) (string, error) {
	c := &clinic.Clinic{}
	if err := h.load(ctx, eventstore.StreamName(clinic.Category, id.String()), c); err != nil {
		return "", err
	}
	if domain.IsNew(c) {
		return "", domain.NotFound("clinic")
	}
	return c.Name, nil
}

// portalAccount is what the API may show of a portal account.
func portalAccount(u *portaluser.User) Account {
	return Account{ID: u.ID, Kind: "portal", Name: u.Name, Email: u.Email}
}
