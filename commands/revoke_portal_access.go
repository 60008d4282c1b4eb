package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/portaluser"
)

// RevokePortalAccess ends a portal account's access to a patient.
type RevokePortalAccess struct {
	PatientID    uuid.UUID
	PortalUserID uuid.UUID
}

// RevokePortalAccess records the revocation on the account's stream, which
// every portal request reads, so access ends with the next request. A
// pending invitation for the patient stops working, and when the account
// has no patient left its sessions end too.
func (h *Handlers) RevokePortalAccess(ctx context.Context, meta Meta, cmd RevokePortalAccess) error {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return err
	}
	if cmd.PortalUserID == uuid.Nil {
		return domain.NotFound("portal user")
	}
	agg, err := h.update(ctx, meta, p.ClinicID, portalUserStream(cmd.PortalUserID), newPortalUser, func(a domain.Aggregate) error {
		return a.(*portaluser.User).Revoke(p.ID)
	})
	if err != nil {
		return err
	}
	user := agg.(*portaluser.User)
	if latest := user.Grants[p.ID].LatestInvitation; latest != [16]byte{} {
		if _, err := h.update(ctx, meta, p.ClinicID, invitationStream(latest), newInvitation, func(a domain.Aggregate) error {
			a.(*invitation.Invitation).Revoke()
			return nil
		}); err != nil {
			return err
		}
	}
	if len(user.Active()) == 0 {
		if _, err := h.sessions.EndAllFor(ctx, user.ID); err != nil {
			return err
		}
	}
	return nil
}
