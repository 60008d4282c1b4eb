package commands

import (
	"context"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/internal/linktoken"
	"github.com/portico-health/portico/internal/password"
)

// AcceptInvitation uses an invitation link: a new account sets its password;
// an account that has one already signs in with it.
type AcceptInvitation struct {
	Token    string
	Password string
}

// AcceptInvitation returns the account to sign in. The link works once:
// acceptance is appended at the invitation's version as read, so of two
// concurrent uses one wins and the other is token_used. A password that is
// refused does not use the link up.
func (h *Handlers) AcceptInvitation(ctx context.Context, meta Meta, cmd AcceptInvitation) (Account, error) {
	meta = meta.withDefaults()
	if h.tokens == nil {
		return Account{}, invitation.ErrTokenInvalid
	}
	claims, err := h.tokens.Parse(linktoken.PurposeInvitation, cmd.Token)
	if err != nil {
		return Account{}, invitation.ErrTokenInvalid
	}
	inv := &invitation.Invitation{}
	if err := h.load(ctx, invitationStream(claims.Subject), inv); err != nil {
		return Account{}, err
	}
	if domain.IsNew(inv) || !inv.ExpiresAt.Equal(claims.Expires) {
		return Account{}, invitation.ErrTokenInvalid
	}
	user, err := h.PortalUser(ctx, inv.PortalUserID)
	if _, refused := domain.AsError(err); err != nil && !refused {
		return Account{}, err
	}
	if err != nil {
		return Account{}, invitation.ErrTokenInvalid
	}
	if g, ok := user.Grants[inv.PatientID]; !ok || g.Revoked {
		return Account{}, invitation.ErrTokenInvalid // access was revoked after the invitation
	}
	var hash string
	if user.HasPassword {
		// An account that is active already proves itself with its password;
		// the link does not replace it (that is what a reset is for).
		stored, found, err := h.creds.hashOf(ctx, user.ID)
		if err != nil {
			return Account{}, err
		}
		if !found || !password.Verify(cmd.Password, stored) {
			return Account{}, InvalidCredentials()
		}
	} else {
		if p := password.Problem(cmd.Password); p != "" {
			return Account{}, passwordRejected(p)
		}
		if hash, err = password.Hash(cmd.Password); err != nil {
			return Account{}, err
		}
	}
	meta.Actor = Actor{ID: user.ID.String(), Kind: "portal"}
	// Another write to the stream (the mailer noting delivery) makes this
	// decide again on the fresh state; a concurrent acceptance then answers
	// token_used.
	if _, err := h.update(ctx, meta, inv.ClinicID, invitationStream(inv.InvitationID), newInvitation, func(a domain.Aggregate) error {
		return a.(*invitation.Invitation).Accept(h.now())
	}); err != nil {
		return Account{}, err
	}
	if hash != "" {
		if err := h.creds.set(ctx, user.ID, hash); err != nil {
			return Account{}, err
		}
		agg, err := h.update(ctx, meta, inv.ClinicID, portalUserStream(user.ID), newPortalUser, func(a domain.Aggregate) error {
			if u := a.(*portaluser.User); !u.HasPassword {
				u.ActivateByInvitation(inv.InvitationID)
			}
			return nil
		})
		if err != nil {
			return Account{}, err
		}
		user = agg.(*portaluser.User)
	}
	return portalAccount(user), nil
}

// passwordRejected is the refusal of a new password, with the reason.
func passwordRejected(reason string) *domain.Error {
	return &domain.Error{Kind: domain.KindValidation, Code: "password_rejected", Message: reason, Fields: map[string]string{"password": reason}}
}
