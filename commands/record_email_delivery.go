package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/portaluser"
)

// RecordInvitationEmailDelivered notes that the mailer handed an invitation
// email to the mail server. Give meta a CommandID derived from the event
// that caused the email, so a redelivered event records nothing twice.
func (h *Handlers) RecordInvitationEmailDelivered(ctx context.Context, meta Meta, invitationID uuid.UUID) error {
	meta = meta.withDefaults()
	inv, err := h.Invitation(ctx, invitationID)
	if err != nil {
		return err
	}
	_, err = h.update(ctx, meta, inv.ClinicID, invitationStream(invitationID), newInvitation, func(a domain.Aggregate) error {
		a.(*invitation.Invitation).NoteDelivered()
		return nil
	})
	return err
}

// RecordResetEmailDelivered notes that the mailer handed a reset email to
// the mail server.
func (h *Handlers) RecordResetEmailDelivered(ctx context.Context, meta Meta, portalUserID, resetID uuid.UUID) error {
	meta = meta.withDefaults()
	_, err := h.update(ctx, meta, uuid.Nil, portalUserStream(portalUserID), newPortalUser, func(a domain.Aggregate) error {
		a.(*portaluser.User).NoteResetDelivered(resetID)
		return nil
	})
	return err
}
