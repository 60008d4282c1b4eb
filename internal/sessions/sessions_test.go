package sessions_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/schema"
	"github.com/portico-health/portico/internal/sessions"
	"github.com/portico-health/portico/internal/testpg"
)

// clock is a clock a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t *testing.T) (*sessions.Store, *clock, *pgxpool.Pool) {
	t.Helper()
	pool := testpg.NewPool(t)
	if err := pgdb.Migrate(context.Background(), pool, schema.Migrations()); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	return sessions.New(pool, sessions.WithClock(c.Now)), c, pool
}

func staffMember() sessions.Principal {
	return sessions.Principal{AccountID: uuid.New(), AccountKind: sessions.KindStaff, ClinicID: uuid.New(), Role: "admin"}
}

func TestStartAndAuthenticate(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	p := staffMember()
	token, started, err := s.Start(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || strings.ContainsAny(token, "+/=") {
		t.Fatalf("token %d characters, want 43 of base64url without padding", len(token))
	}
	if !started.ExpiresAt.Equal(c.Now().Add(12 * time.Hour)) {
		t.Fatalf("expires at %v, want 12 hours after %v", started.ExpiresAt, c.Now())
	}
	got, err := s.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if got.Principal != p || !got.CreatedAt.Equal(c.Now()) || !got.ExpiresAt.Equal(started.ExpiresAt) {
		t.Fatalf("authenticated %+v, want %+v", got, started)
	}

	// A portal account has no clinic and no role.
	portal := sessions.Principal{AccountID: uuid.New(), AccountKind: sessions.KindPortal}
	token2, _, err := s.Start(ctx, portal)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, token2); err != nil || got.Principal != portal {
		t.Fatalf("portal session = %+v, %v", got, err)
	}
	if token2 == token {
		t.Fatal("two sessions got the same token")
	}

	for _, bad := range []sessions.Principal{{AccountKind: "staff"}, {AccountID: uuid.New(), AccountKind: "system"}} {
		if _, _, err := s.Start(ctx, bad); err == nil {
			t.Errorf("Start(%+v) succeeded", bad)
		}
	}
}

func TestUnknownAndMalformedTokensAreRefused(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	token, _, err := s.Start(ctx, staffMember())
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"empty":         "",
		"short":         token[:20],
		"long":          token + "A",
		"not base64url": strings.Repeat("+", 43),
		"unknown":       strings.Repeat("A", 43),
		"padded":        token[:42] + "=",
	} {
		_, err := s.Authenticate(ctx, bad)
		if !errors.Is(err, sessions.ErrNoSession) || !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("%s token: %v, want ErrNoSession", name, err)
		}
	}
}

func TestTokenIsStoredOnlyAsItsHash(t *testing.T) {
	s, _, pool := newStore(t)
	ctx := context.Background()
	token, _, err := s.Start(ctx, staffMember())
	if err != nil {
		t.Fatal(err)
	}
	var row string
	if err := pool.QueryRow(ctx, `SELECT s::text FROM sessions s`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, token) {
		t.Fatalf("the raw token is in the sessions table: %s", row)
	}
	var stored []byte
	if err := pool.QueryRow(ctx, `SELECT token_hash FROM sessions`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(token))
	if !bytes.Equal(stored, want[:]) {
		t.Fatal("token_hash is not the token's SHA-256")
	}
}

func TestIdleTimeout(t *testing.T) {
	s, c, pool := newStore(t)
	ctx := context.Background()
	token, _, err := s.Start(ctx, staffMember())
	if err != nil {
		t.Fatal(err)
	}
	lastSeen := func() time.Time {
		var ts time.Time
		if err := pool.QueryRow(ctx, `SELECT last_seen_at FROM sessions`).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts.UTC()
	}
	started := c.Now()

	// Used within a minute: nothing is written.
	c.Advance(59 * time.Second)
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	if !lastSeen().Equal(started) {
		t.Fatalf("last_seen_at written %v after under a minute", lastSeen())
	}
	// Used after a minute: touched.
	c.Advance(time.Second)
	sess, err := s.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if !lastSeen().Equal(c.Now()) || !sess.LastSeenAt.Equal(c.Now()) {
		t.Fatalf("last_seen_at = %v (session says %v), want %v", lastSeen(), sess.LastSeenAt, c.Now())
	}

	// Kept alive by use every 29 minutes, well past the first 30.
	for range 4 {
		c.Advance(29 * time.Minute)
		if _, err := s.Authenticate(ctx, token); err != nil {
			t.Fatalf("after 29 idle minutes: %v", err)
		}
	}
	// 30 minutes of silence end it, and use does not revive it.
	c.Advance(30 * time.Minute)
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, sessions.ErrIdle) || !errors.Is(err, sessions.ErrExpired) {
		t.Fatalf("after 30 idle minutes: %v, want ErrIdle", err)
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	token, sess, err := s.Start(ctx, staffMember())
	if err != nil {
		t.Fatal(err)
	}
	// Busy all day: used every 20 minutes.
	for c.Now().Add(20 * time.Minute).Before(sess.ExpiresAt) {
		c.Advance(20 * time.Minute)
		if _, err := s.Authenticate(ctx, token); err != nil {
			t.Fatalf("at %v: %v", c.Now(), err)
		}
	}
	c.Advance(sess.ExpiresAt.Sub(c.Now()) - time.Microsecond)
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatalf("just before 12 hours: %v", err)
	}
	c.Advance(time.Microsecond)
	_, err = s.Authenticate(ctx, token)
	if !errors.Is(err, sessions.ErrExpired) || errors.Is(err, sessions.ErrIdle) {
		t.Fatalf("at 12 hours: %v, want ErrExpired (not idle)", err)
	}
}

func TestEndAndEndAllFor(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	p, other := staffMember(), staffMember()
	var tokens []string
	for range 3 {
		token, _, err := s.Start(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, token)
	}
	otherToken, _, err := s.Start(ctx, other)
	if err != nil {
		t.Fatal(err)
	}

	// End is sign-out of one session; doing it twice, or for garbage, is fine.
	if err := s.End(ctx, tokens[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, tokens[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, "garbage"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tokens[0]); !errors.Is(err, sessions.ErrEnded) {
		t.Fatalf("ended session: %v, want ErrEnded", err)
	}
	if _, err := s.Authenticate(ctx, tokens[1]); err != nil {
		t.Fatalf("ending one session ended another: %v", err)
	}

	n, err := s.EndAllFor(ctx, p.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("EndAllFor ended %d sessions, want the 2 live ones", n)
	}
	for i, token := range tokens {
		if _, err := s.Authenticate(ctx, token); !errors.Is(err, sessions.ErrEnded) {
			t.Errorf("session %d after EndAllFor: %v, want ErrEnded", i, err)
		}
	}
	if _, err := s.Authenticate(ctx, otherToken); err != nil {
		t.Fatalf("EndAllFor ended another account's session: %v", err)
	}
}

func TestPurgeDeletesOnlySessionsLongOver(t *testing.T) {
	s, c, pool := newStore(t)
	ctx := context.Background()
	var tokens []string
	for range 3 {
		token, _, err := s.Start(ctx, staffMember())
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, token)
	}
	ended, live := tokens[0], tokens[2] // tokens[1] goes idle
	if err := s.End(ctx, ended); err != nil {
		t.Fatal(err)
	}
	c.Advance(25 * time.Minute)
	if _, err := s.Authenticate(ctx, live); err != nil {
		t.Fatal(err)
	}
	c.Advance(25 * time.Minute) // idle is now over for 20 minutes, ended for 50
	n, err := s.Purge(ctx, 40*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("purged %d, want only the ended session", n)
	}
	c.Advance(30 * time.Minute)
	if n, err := s.Purge(ctx, 40*time.Minute); err != nil || n != 1 {
		t.Fatalf("second purge: %d, %v, want the idle session", n, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d sessions left (%v), want the live one", left, err)
	}
}
