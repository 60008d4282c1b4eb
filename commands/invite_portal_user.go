package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/portaluser"
)

// InvitePortalUser invites the patient (ContactID nil) or one of the
// patient's contacts to the portal, at the email address on the chart.
type InvitePortalUser struct {
	PatientID          uuid.UUID
	ContactID          *uuid.UUID
	Permissions        []string // nil: all
	IntakeFormIDs      []uuid.UUID
	IntakeFormsMessage string
}

// Invited says what InvitePortalUser made.
type Invited struct {
	InvitationID uuid.UUID
	PortalUserID uuid.UUID
}

// InvitePortalUser finds or creates the invitee's account (one per email
// address), grants it access to the patient, and issues an invitation that
// supersedes any earlier one of that account for that patient. The email
// is sent by the mailer when it sees InvitationIssued.
func (h *Handlers) InvitePortalUser(ctx context.Context, meta Meta, cmd InvitePortalUser) (Invited, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return Invited{}, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return Invited{}, err
	}
	who, err := inviteeOf(p, cmd.ContactID)
	if err != nil {
		return Invited{}, err
	}
	perms, ok := portaluser.NormalisePermissions(cmd.Permissions)
	if !ok {
		return Invited{}, domain.Invalid(map[string]string{"permissions": "any of documents, activities, forms, billing"})
	}
	// The forms must be the clinic's before anyone is invited.
	for _, fid := range cmd.IntakeFormIDs {
		if _, err := h.IntakeForm(ctx, p.ClinicID, fid); err != nil {
			if _, refused := domain.AsError(err); refused {
				return Invited{}, domain.Invalid(map[string]string{"intake_form_ids": "no such form in this clinic's library: " + fid.String()})
			}
			return Invited{}, err
		}
	}
	user, err := h.portalAccountFor(ctx, meta, p.ClinicID, who.email, who.name)
	if err != nil {
		return Invited{}, err
	}
	g := portaluser.Grant{PatientID: p.ID, ClinicID: p.ClinicID, Relationship: who.relationship, ContactID: who.contactID, Permissions: perms}
	agg, err := h.update(ctx, meta, p.ClinicID, portalUserStream(user.ID), newPortalUser, func(a domain.Aggregate) error {
		a.(*portaluser.User).Grant(g)
		return nil
	})
	if err != nil {
		return Invited{}, err
	}
	id, err := h.issueInvitation(ctx, meta, agg.(*portaluser.User), g, "staff", cmd.IntakeFormIDs, cmd.IntakeFormsMessage)
	if err != nil {
		return Invited{}, err
	}
	for _, fid := range cmd.IntakeFormIDs {
		if _, err := h.AssignIntakeForm(ctx, meta, AssignIntakeForm{PatientID: p.ID, FormID: fid, Message: cmd.IntakeFormsMessage, InvitationID: &id}); err != nil {
			return Invited{}, err
		}
	}
	return Invited{InvitationID: id, PortalUserID: user.ID}, nil
}
