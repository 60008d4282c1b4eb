// Package sessions keeps the sign-in sessions of staff and portal accounts.
//
// A session is named by an opaque bearer token of 256 random bits
// (base64url, no padding). The token is handed to the client once, by Start,
// and never stored: the sessions table (internal/schema, migration 00002)
// keys each session by the token's SHA-256, so a copy of the table signs no
// one in. Nothing in this package logs, wraps into an error or otherwise
// emits a token or its hash.
//
// A session ends when it is ended (sign-out, End; or EndAllFor, for password
// resets and revocations), when it has been idle for IdleTimeout, or at the
// latest Lifetime after it started. All three are decided by the Store's
// clock, which tests set with WithClock.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The limits API.md fixes.
const (
	// IdleTimeout ends a session not used for this long.
	IdleTimeout = 30 * time.Minute
	// Lifetime ends a session this long after it started, however busy.
	Lifetime = 12 * time.Hour
	// TouchEvery bounds how often a used session's last_seen_at is written,
	// so most authenticated requests only read. The price: a session may end
	// up to TouchEvery before a full IdleTimeout of real idleness, never after.
	TouchEvery = time.Minute
)

// Account kinds a session may belong to.
const (
	KindStaff  = "staff"
	KindPortal = "portal"
)

// tokenBytes is the token's entropy: 256 bits.
const tokenBytes = 32

var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

// Errors of Authenticate. Every refusal matches ErrInvalid; ErrIdle also
// matches ErrExpired. None of them carries the token.
var (
	ErrInvalid = errors.New("sessions: no valid session")
	// ErrNoSession: the token is malformed or names no session.
	ErrNoSession = fmt.Errorf("%w: unknown token", ErrInvalid)
	// ErrEnded: the session was ended (signed out or revoked).
	ErrEnded = fmt.Errorf("%w: session ended", ErrInvalid)
	// ErrExpired: the session outlived Lifetime (or, as ErrIdle, IdleTimeout).
	ErrExpired = fmt.Errorf("%w: session expired", ErrInvalid)
	// ErrIdle: the session was not used for IdleTimeout.
	ErrIdle = fmt.Errorf("%w after %v idle", ErrExpired, IdleTimeout)
)

// Principal is whom a session signs in.
type Principal struct {
	AccountID uuid.UUID
	// AccountKind is KindStaff or KindPortal.
	AccountKind string
	// ClinicID is a staff member's clinic; uuid.Nil for an account without one.
	ClinicID uuid.UUID
	// Role is a staff member's role when the session started; "" for portal
	// accounts. A change of role should end the account's sessions.
	Role string
}

// Session is a live session.
type Session struct {
	Principal
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end; idleness may end the session sooner.
	ExpiresAt time.Time
}

// Store keeps sessions in Postgres. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithClock makes the Store read the time from now (tests use a clock they
// can advance). The default is the system clock.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// New makes a Store over the database that holds the sessions table.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// clock reads the time at the database's precision, so what is stored and
// what is compared are the same instants.
func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Start begins a session for p and returns its token, which exists nowhere
// else: give it to the client and forget it.
func (s *Store) Start(ctx context.Context, p Principal) (string, Session, error) {
	if p.AccountID == uuid.Nil {
		return "", Session{}, errors.New("sessions: start: no account id")
	}
	if p.AccountKind != KindStaff && p.AccountKind != KindPortal {
		return "", Session{}, fmt.Errorf("sessions: start: account kind %q is neither %s nor %s", p.AccountKind, KindStaff, KindPortal)
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Session{}, fmt.Errorf("sessions: start: random token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.clock()
	sess := Session{Principal: p, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(Lifetime)}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO sessions (token_hash, account_id, account_kind, clinic_id, role, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`,
		hashOf(token), p.AccountID, p.AccountKind, nullable(p.ClinicID), p.Role, now, sess.ExpiresAt)
	if err != nil {
		return "", Session{}, fmt.Errorf("sessions: start: %w", err)
	}
	return token, sess, nil
}

// Authenticate finds the live session a token names and marks it used. A
// refusal is an error matching ErrInvalid (ErrNoSession, ErrEnded,
// ErrExpired or ErrIdle); any other error is the database's.
func (s *Store) Authenticate(ctx context.Context, token string) (Session, error) {
	if !wellFormed(token) {
		return Session{}, ErrNoSession
	}
	h := hashOf(token)
	var (
		sess     Session
		clinicID *uuid.UUID
		revoked  *time.Time
	)
	err := s.pool.QueryRow(ctx, `
		SELECT account_id, account_kind, clinic_id, role, created_at, last_seen_at, expires_at, revoked_at
		FROM sessions WHERE token_hash = $1`, h).
		Scan(&sess.AccountID, &sess.AccountKind, &clinicID, &sess.Role, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: authenticate: %w", err)
	}
	if clinicID != nil {
		sess.ClinicID = *clinicID
	}
	sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.LastSeenAt.UTC(), sess.ExpiresAt.UTC()

	now := s.clock()
	switch idle := now.Sub(sess.LastSeenAt); {
	case revoked != nil:
		return Session{}, ErrEnded
	case !now.Before(sess.ExpiresAt):
		return Session{}, ErrExpired
	case idle >= IdleTimeout:
		return Session{}, ErrIdle
	case idle >= TouchEvery:
		// Never moves last_seen_at back, and never revives an ended session.
		if _, err := s.pool.Exec(ctx, `
			UPDATE sessions SET last_seen_at = $2
			WHERE token_hash = $1 AND revoked_at IS NULL AND last_seen_at < $2`, h, now); err != nil {
			return Session{}, fmt.Errorf("sessions: authenticate: touch: %w", err)
		}
		sess.LastSeenAt = now
	}
	return sess, nil
}

// End ends the session a token names (sign-out). Ending an unknown or ended
// session does nothing and is no error.
func (s *Store) End(ctx context.Context, token string) error {
	if !wellFormed(token) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL`, hashOf(token), s.clock())
	if err != nil {
		return fmt.Errorf("sessions: end: %w", err)
	}
	return nil
}

// EndAllFor ends every session of an account (after a password reset, a
// revocation or a change of role) and says how many were live.
func (s *Store) EndAllFor(ctx context.Context, accountID uuid.UUID) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL`, accountID, s.clock())
	if err != nil {
		return 0, fmt.Errorf("sessions: end all for account: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Purge deletes sessions that have been over (ended, expired or idle) for
// longer than keep, and says how many it deleted. Run it now and then.
func (s *Store) Purge(ctx context.Context, keep time.Duration) (int64, error) {
	cutoff := s.clock().Add(-keep)
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM sessions
		WHERE revoked_at < $1 OR expires_at < $1 OR last_seen_at < $2`, cutoff, cutoff.Add(-IdleTimeout))
	if err != nil {
		return 0, fmt.Errorf("sessions: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}

// wellFormed reports whether token has the shape Start gives tokens, so
// garbage never reaches the database.
func wellFormed(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

func hashOf(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func nullable(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}
