package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/eventstore"
)

// RequestPasswordReset is "Forgot password".
type RequestPasswordReset struct {
	Email string
}

// RequestPasswordReset starts a reset for an active portal account (the
// mailer sends the link), or renews the invitation of an account that never
// accepted one. For any other address it does nothing and says nothing:
// the API answers every request alike, and runs this off the request, so
// neither the answer nor its timing tells whether an address is known.
// Staff passwords are reset by a clinic administrator, not by email.
func (h *Handlers) RequestPasswordReset(ctx context.Context, meta Meta, cmd RequestPasswordReset) error {
	meta = meta.withDefaults()
	email, ok := emailclaim.Normalise(cmd.Email)
	if !ok {
		return nil
	}
	claim := &emailclaim.Claim{}
	if err := h.load(ctx, eventstore.StreamName(emailclaim.Category, emailclaim.StreamID(email)), claim); err != nil {
		return err
	}
	if claim.AccountID == uuid.Nil || claim.AccountKind != "portal" {
		return nil
	}
	user, err := h.PortalUser(ctx, claim.AccountID)
	if err != nil {
		return nil
	}
	active := user.Active()
	if len(active) == 0 {
		return nil // every grant revoked: nothing to reset into
	}
	meta.Actor = Actor{ID: user.ID.String(), Kind: "portal"}
	if user.HasPassword {
		resetID := uuid.NewSHA1(bootstrapNamespace, []byte("reset:"+meta.CommandID))
		_, err := h.update(ctx, meta, uuid.Nil, portalUserStream(user.ID), newPortalUser, func(a domain.Aggregate) error {
			u := a.(*portaluser.User)
			// One email a minute at most, so the form cannot flood an inbox;
			// decided on the state the append expects, so parallel requests
			// cannot each pass.
			if requested := u.Reset.ExpiresAt.Add(-portaluser.ResetValidity); !u.Reset.Used && h.now().Sub(requested) < resendAfter {
				return nil
			}
			u.RequestReset(resetID, h.now())
			return nil
		})
		return err
	}
	// Never activated: a fresh link for the newest invitation's patient, or
	// for the first patient still granted.
	g := active[0]
	if user.LatestInvitation != uuid.Nil {
		inv := &invitation.Invitation{}
		if err := h.load(ctx, invitationStream(user.LatestInvitation), inv); err != nil {
			return err
		}
		if latest, ok := user.Grants[inv.PatientID]; ok && !latest.Revoked {
			g = *latest
		}
	}
	if g.LatestInvitation != uuid.Nil {
		inv := &invitation.Invitation{}
		if err := h.load(ctx, invitationStream(g.LatestInvitation), inv); err != nil {
			return err
		}
		if issued := inv.ExpiresAt.Add(-invitation.Validity); inv.StateAt(h.now()) == invitation.StatePending && h.now().Sub(issued) < resendAfter {
			return nil
		}
	}
	_, err = h.issueInvitation(ctx, meta, user, g, "forgot_password", nil, "")
	return err
}

// resendAfter is the least time between two emails "Forgot password" sends
// to one account.
const resendAfter = time.Minute
