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

// errPasswordChangedMeanwhile: the hash changed between the check of the
// current password and the change (a reset, or another change, won).
var errPasswordChangedMeanwhile = &domain.Error{Kind: domain.KindConflict, Code: "concurrent_update",
	Message: "the password was changed meanwhile; sign in again"}

// ChangePassword checks the current password, then the new one against the
// rules; swaps the stored hash only if it is still the one checked (a reset
// landing in between wins); records PasswordSet (via "change", no secret);
// and ends every session of the account, the caller's included: the caller
// starts a fresh one, so a stolen token dies with the old password.
func (h *Handlers) ChangePassword(ctx context.Context, meta Meta, cmd ChangePassword) (Account, error) {
	meta = meta.withDefaults()
	var (
		stream   string
		fresh    func() domain.Aggregate
		clinicID uuid.UUID
	)
	switch cmd.AccountKind {
	case "portal":
		stream, fresh = portalUserStream(cmd.AccountID), newPortalUser
	case "staff":
		acct, err := h.StaffAccount(ctx, cmd.AccountID)
		if err != nil {
			return Account{}, err
		}
		clinicID = acct.ClinicID
		stream, fresh = eventstore.StreamName(staff.Category, cmd.AccountID.String()), func() domain.Aggregate { return &staff.Account{} }
	default:
		return Account{}, domain.NotFound("account")
	}
	hash, found, err := h.creds.hashOf(ctx, cmd.AccountID)
	if err != nil {
		return Account{}, err
	}
	if !found {
		hash = dummyHash() // the same work, and the same answer, as a wrong password
	}
	if !password.Verify(cmd.Current, hash) || !found {
		return Account{}, ErrCurrentPasswordWrong
	}
	if p := password.Problem(cmd.New); p != "" {
		return Account{}, newPasswordRejected(p)
	}
	if cmd.New == cmd.Current {
		return Account{}, newPasswordRejected("the new password must differ from the current one")
	}
	newHash, err := password.Hash(cmd.New)
	if err != nil {
		return Account{}, err
	}
	swapped, err := h.creds.replace(ctx, cmd.AccountID, hash, newHash)
	if err != nil {
		return Account{}, err
	}
	if !swapped {
		return Account{}, errPasswordChangedMeanwhile
	}
	agg, err := h.update(ctx, meta, clinicID, stream, fresh, func(a domain.Aggregate) error {
		switch acct := a.(type) {
		case *portaluser.User:
			return acct.ChangePassword()
		case *staff.Account:
			return acct.ChangePassword()
		}
		return domain.NotFound("account")
	})
	if err != nil {
		// Unrecorded, so not made: the old password comes back unless
		// something else has replaced the hash since.
		if _, rerr := h.creds.replace(context.WithoutCancel(ctx), cmd.AccountID, newHash, hash); rerr != nil {
			return Account{}, rerr
		}
		return Account{}, err
	}
	if _, err := h.sessions.EndAllFor(ctx, cmd.AccountID); err != nil {
		return Account{}, err
	}
	switch acct := agg.(type) {
	case *portaluser.User:
		return portalAccount(acct), nil
	case *staff.Account:
		return staffAccount(acct), nil
	}
	return Account{}, domain.NotFound("account")
}

// newPasswordRejected is password_rejected, naming the field this command
// takes the new password in.
func newPasswordRejected(reason string) *domain.Error {
	e := passwordRejected(reason)
	e.Fields = map[string]string{"new_password": reason}
	return e
}
