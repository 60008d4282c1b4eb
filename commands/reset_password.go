package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/internal/linktoken"
	"github.com/portico-health/portico/internal/password"
)

// ResetPassword sets a new password through a reset link.
type ResetPassword struct {
	Token    string
	Password string
}

// ResetPassword checks the link (the account's current reset, unused, within
// the hour), records the new password, stores its hash and ends every
// session of the account. A refused password does not use the link up.
func (h *Handlers) ResetPassword(ctx context.Context, meta Meta, cmd ResetPassword) (Account, error) {
	meta = meta.withDefaults()
	if h.tokens == nil {
		return Account{}, portaluser.ErrTokenInvalid
	}
	claims, err := h.tokens.Parse(linktoken.PurposeReset, cmd.Token)
	if err != nil {
		return Account{}, portaluser.ErrTokenInvalid
	}
	user, err := h.PortalUser(ctx, claims.Subject)
	if _, refused := domain.AsError(err); err != nil && !refused {
		return Account{}, err
	}
	if err != nil || user.Reset.ID != claims.Nonce || !user.Reset.ExpiresAt.Equal(claims.Expires) {
		return Account{}, portaluser.ErrTokenInvalid
	}
	// Refuse a used or expired link before judging the password, so the
	// answer says what is wrong with the link first.
	if err := user.CheckReset(claims.Nonce, h.now()); err != nil {
		return Account{}, err
	}
	if p := password.Problem(cmd.Password); p != "" {
		return Account{}, passwordRejected(p)
	}
	hash, err := password.Hash(cmd.Password)
	if err != nil {
		return Account{}, err
	}
	meta.Actor = Actor{ID: user.ID.String(), Kind: "portal"}
	if _, err := h.update(ctx, meta, uuid.Nil, portalUserStream(user.ID), newPortalUser, func(a domain.Aggregate) error {
		return a.(*portaluser.User).CompleteReset(claims.Nonce, h.now())
	}); err != nil {
		return Account{}, err
	}
	if err := h.creds.set(ctx, user.ID, hash); err != nil {
		return Account{}, err
	}
	if _, err := h.sessions.EndAllFor(ctx, user.ID); err != nil {
		return Account{}, err
	}
	return portalAccount(user), nil
}
