package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/password"
)

// ChangePassword replaces a signed-in account's password; the current one
// must be given, so that a session left open on a shared computer cannot
// take the account over.
type ChangePassword struct {
	AccountID   uuid.UUID
	AccountKind string // "portal" or "staff", the session's kind
	Current     string
	New         string
}

// ErrCurrentPasswordWrong refuses a change whose current password is not
// the account's.
var ErrCurrentPasswordWrong = &domain.Error{Kind: domain.KindValidation, Code: "current_password_wrong",
	Message: "the current password is not right", Fields: map[string]string{"current_password": "not the account's password"}}

// ChangePassword checks the current password, then the new one against the
// rules, records PasswordSet (via "change"), and stores the new hash. The
// caller ends the account's other sessions: it knows which one is asking.
func (h *Handlers) ChangePassword(ctx context.Context, meta Meta, cmd ChangePassword) error {
	meta = meta.withDefaults()
	var stream string
	var fresh func() domain.Aggregate
	switch cmd.AccountKind {
	case "portal":
		stream, fresh = portalUserStream(cmd.AccountID), newPortalUser
	case "staff":
		stream, fresh = eventstore.StreamName(staff.Category, cmd.AccountID.String()), func() domain.Aggregate { return &staff.Account{} }
	default:
		return domain.NotFound("account")
	}
	hash, found, err := h.creds.hashOf(ctx, cmd.AccountID)
	if err != nil {
		return err
	}
	if !found {
		hash = dummyHash() // the same work, and the same answer, as a wrong password
	}
	if !password.Verify(cmd.Current, hash) || !found {
		return ErrCurrentPasswordWrong
	}
	if p := password.Problem(cmd.New); p != "" {
		return newPasswordRejected(p)
	}
	if cmd.New == cmd.Current {
		return newPasswordRejected("the new password must differ from the current one")
	}
	newHash, err := password.Hash(cmd.New)
	if err != nil {
		return err
	}
	if _, err := h.update(ctx, meta, uuid.Nil, stream, fresh, func(a domain.Aggregate) error {
		switch acct := a.(type) {
		case *portaluser.User:
			return acct.ChangePassword()
		case *staff.Account:
			return acct.ChangePassword()
		}
		return domain.NotFound("account")
	}); err != nil {
		return err
	}
	return h.creds.set(ctx, cmd.AccountID, newHash)
}

// newPasswordRejected is password_rejected, naming the field this command
// takes the new password in.
func newPasswordRejected(reason string) *domain.Error {
	e := passwordRejected(reason)
	e.Fields = map[string]string{"new_password": reason}
	return e
}
