package commands

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/password"
)

// SignIn is an attempt to sign in with an email and a password.
type SignIn struct {
	Email    string
	Password string
}

// Account is what the API may show of a signed-in account. It never holds a
// credential.
type Account struct {
	ID       uuid.UUID
	Kind     string // "staff" (and "portal", when portal accounts arrive)
	ClinicID uuid.UUID
	Name     string
	Email    string
	Role     string // a staff member's role; "" for portal accounts
}

// InvalidCredentials is the one answer to every failed sign-in, whatever was
// wrong: an unknown email, a wrong password, an account without a password,
// or input that is no email at all.
func InvalidCredentials() *domain.Error {
	return &domain.Error{Kind: domain.KindUnauthorized, Code: "invalid_credentials", Message: "the email address or the password is not right"}
}

// SignIn checks an email and a password and returns the account they belong
// to, or InvalidCredentials. It records nothing and starts no session (the
// API does, with internal/sessions).
//
// Whether the email is known must not show in the time taken: every attempt
// reads the claim stream, an account stream and the credentials table, and
// verifies the password against an argon2id hash — the dummy one when there
// is no real one — so known and unknown addresses do the same work.
func (h *Handlers) SignIn(ctx context.Context, cmd SignIn) (Account, error) {
	fallback := dummyHash() // first, so that making it costs every address alike
	email, emailOK := emailclaim.Normalise(cmd.Email)

	claim := &emailclaim.Claim{}
	if err := h.load(ctx, eventstore.StreamName(emailclaim.Category, emailclaim.StreamID(email)), claim); err != nil {
		return Account{}, err
	}
	// Unknown addresses go on with the nil id: an empty stream, no hash.
	var (
		usable  bool
		account Account
	)
	switch claim.AccountKind {
	case "portal":
		u := &portaluser.User{}
		if err := h.load(ctx, portalUserStream(claim.AccountID), u); err != nil {
			return Account{}, err
		}
		// An account whose every grant was revoked has nothing to sign in to.
		usable = u.ID == claim.AccountID && u.HasPassword && len(u.Active()) > 0
		account = portalAccount(u)
	default:
		acct := &staff.Account{}
		if err := h.load(ctx, eventstore.StreamName(staff.Category, claim.AccountID.String()), acct); err != nil {
			return Account{}, err
		}
		usable = claim.AccountKind == "staff" && acct.ID == claim.AccountID && acct.HasPassword
		account = staffAccount(acct)
	}
	hash, found, err := h.creds.hashOf(ctx, claim.AccountID)
	if err != nil {
		return Account{}, err
	}

	usable = usable && emailOK && found && claim.AccountID != uuid.Nil
	if !usable {
		hash = fallback
	}
	if !password.Verify(cmd.Password, hash) || !usable {
		return Account{}, InvalidCredentials()
	}
	return account, nil
}

// PortalAccount is a portal account as its stream says now, or not_found.
func (h *Handlers) PortalAccount(ctx context.Context, id uuid.UUID) (Account, error) {
	u, err := h.PortalUser(ctx, id)
	if err != nil {
		return Account{}, err
	}
	return portalAccount(u), nil
}

// StaffAccount is a staff member's account as its stream says now, or
// not_found.
func (h *Handlers) StaffAccount(ctx context.Context, id uuid.UUID) (Account, error) {
	acct := &staff.Account{}
	if id == uuid.Nil {
		return Account{}, domain.NotFound("staff account")
	}
	if err := h.load(ctx, eventstore.StreamName(staff.Category, id.String()), acct); err != nil {
		return Account{}, err
	}
	if domain.IsNew(acct) || acct.ID != id {
		return Account{}, domain.NotFound("staff account")
	}
	return staffAccount(acct), nil
}

func staffAccount(a *staff.Account) Account {
	return Account{ID: a.ID, Kind: "staff", ClinicID: a.ClinicID, Name: a.Name, Email: a.Email, Role: string(a.Role)}
}

// hashOf reads an account's password hash; found is false when it has none.
func (c *credentials) hashOf(ctx context.Context, account uuid.UUID) (hash string, found bool, err error) {
	err = c.pool.QueryRow(ctx, `SELECT password_hash FROM credentials WHERE account_id = $1`, account).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return hash, true, nil
}

var (
	dummyOnce sync.Once
	dummy     string
)

// dummyHash is an argon2id hash, made with today's parameters, of a random
// password nobody knows. Verifying against it costs what verifying against a
// real hash costs. The first sign-in makes it, whatever the address.
func dummyHash() string {
	dummyOnce.Do(func() {
		h, err := password.Hash(uuid.NewString() + uuid.NewString())
		if err != nil {
			panic("commands: cannot hash the dummy password: " + err.Error())
		}
		dummy = h
	})
	return dummy
}
