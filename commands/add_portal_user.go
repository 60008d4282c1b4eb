package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/portaluser"
)

// AddPortalUser lets someone who is not a contact on the chart into a
// patient's portal (a second parent, a case worker): an existing account
// with that email is linked, otherwise one is created.
type AddPortalUser struct {
	PatientID    uuid.UUID
	Name         string
	Email        string
	Relationship string // default "other"
	Permissions  []string
}

// AddedPortalUser says what AddPortalUser did. InvitationID is nil when the
// account was active already: it can sign in and see the patient at once.
type AddedPortalUser struct {
	PortalUserID uuid.UUID
	InvitationID *uuid.UUID
}

// AddPortalUser grants the account access and, unless the account is
// active, invites it.
func (h *Handlers) AddPortalUser(ctx context.Context, meta Meta, cmd AddPortalUser) (AddedPortalUser, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return AddedPortalUser{}, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return AddedPortalUser{}, err
	}
	bad := map[string]string{}
	email, ok := emailclaim.Normalise(cmd.Email)
	if !ok {
		bad["email"] = "a valid email address is required"
	}
	rel := cmd.Relationship
	if rel == "" {
		rel = "other"
	}
	perms, ok := portaluser.NormalisePermissions(cmd.Permissions)
	if !ok {
		bad["permissions"] = "any of documents, activities, forms, billing"
	}
	if len(bad) > 0 {
		return AddedPortalUser{}, domain.Invalid(bad)
	}
	user, err := h.portalAccountFor(ctx, meta, p.ClinicID, email, cmd.Name)
	if err != nil {
		return AddedPortalUser{}, err
	}
	g := portaluser.Grant{PatientID: p.ID, ClinicID: p.ClinicID, Relationship: rel, Permissions: perms}
	agg, err := h.update(ctx, meta, p.ClinicID, portalUserStream(user.ID), newPortalUser, func(a domain.Aggregate) error {
		a.(*portaluser.User).Grant(g)
		return nil
	})
	if err != nil {
		return AddedPortalUser{}, err
	}
	user = agg.(*portaluser.User)
	out := AddedPortalUser{PortalUserID: user.ID}
	if !user.HasPassword {
		id, err := h.issueInvitation(ctx, meta, user, g, "staff", nil, "")
		if err != nil {
			return AddedPortalUser{}, err
		}
		out.InvitationID = &id
	}
	return out, nil
}
