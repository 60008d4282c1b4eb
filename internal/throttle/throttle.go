// Package throttle slows down and then refuses sign-in attempts that keep
// failing, per account and per client address, across every process that
// shares the database.
//
// # Keys
//
// A key names what is counted. AccountKey gives "account:" and the hex SHA-256
// of the normalised email (trimmed, lowercased: what emailclaim.Normalise
// does), so the login_throttle table (internal/schema, migration 00003) holds
// no email address, and a copy of it says who was attacked only to someone who
// already guesses the address. AddrKey gives "addr:" and the client's IPv4
// address, or its IPv6 /64 (one subscriber's usual allocation, so hopping
// through one's own /64 is no way around the limit). Addresses are stored as
// they are: operators need to see which network is refused, and the PHI access
// records hold client addresses anyway.
//
// A key is derived from what was typed, never from whether an account exists:
// the caller throttles, and reports failures for, unknown emails exactly like
// known ones, so the throttle's answers tell nothing about which accounts
// exist.
//
// # Using it
//
// For each sign-in attempt, with keys = AccountKey(email), AddrKey(remote):
//
//	d, err := lim.Check(ctx, keys...)   // refused: answer 429 with Retry-After d.RetryAfter; verify nothing
//	d.Wait(ctx)                         // allowed: sleep d.Delay, then verify the password
//	lim.Fail(ctx, keys...)              // wrong password, unknown email, no password set: all alike
//	lim.Succeed(ctx, keys...)           // signed in (or after a password reset): clears the account
//
// Check reserves the attempt on every key until Fail or Succeed reports its
// outcome, and counts reserved attempts as if they had failed, so a burst of
// simultaneous guesses gets no more through than the same guesses one by one.
// A reservation that is never reported (a crash, an error path) is forgotten
// after PendingTTL.
//
// # What it does not do
//
// The refusal lasts Lockout and then the key starts afresh, so a patient
// attacker gets AccountLimit guesses per Lockout and a bit (about 40 an hour)
// per account; the common-password list (internal/password) is what makes those
// guesses unlikely to succeed. Anyone can keep an account refused by failing
// on purpose; a password reset, which ends in Succeed, lifts it.
package throttle

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The policy. Failures are counted in a fixed window that starts at a key's
// first failure; a refusal, once it ends, leaves the key with a clean slate.
const (
	// Window is how long failures are remembered: 15 minutes, long enough to
	// span a scripted run, short enough that yesterday's typos never count.
	Window = 15 * time.Minute

	// AccountFree failures per account and Window cost nothing: typos, caps
	// lock, the wrong one of a person's usual passwords.
	AccountFree = 5
	// From the AccountFree-th failure on, each further attempt on the account
	// waits BaseDelay, doubling per failure, at most MaxDelay: 1s, 2s, 4s, 8s,
	// 8s. Noticeable to a script, a shrug to a person.
	BaseDelay = time.Second
	MaxDelay  = 8 * time.Second
	// AccountLimit failures in a Window refuse the account for Lockout. Ten
	// tries covers every honest mistake; past it, the user should reset the
	// password, which lifts the refusal.
	AccountLimit = 10

	// AddrLimit failures from one address in a Window refuse the address for
	// Lockout, whatever the accounts: the guard against one client spraying
	// one password across many accounts, which per-account counts never see.
	// Fifty leaves room for a clinic's front desk behind one NAT.
	AddrLimit = 50

	// Lockout is how long a refusal lasts.
	Lockout = 15 * time.Minute

	// PendingTTL forgets an attempt Check reserved and nobody reported.
	// Verifying a password takes well under a second, plus at most MaxDelay.
	PendingTTL = time.Minute
	// BusyRetry is the Retry-After for an attempt refused because the
	// attempts already in flight fill the allowance: they end within seconds.
	BusyRetry = 10 * time.Second
)

// Key prefixes: every key is one of these and the rest AccountKey or AddrKey
// made.
const (
	accountPrefix = "account:"
	addrPrefix    = "addr:"
	// invalidAddr is the one key every unparseable address shares.
	invalidAddr = addrPrefix + "invalid"
)

// ErrKey is returned for a key AccountKey or AddrKey did not make.
var ErrKey = errors.New("throttle: not a throttle key")

// AccountKey is the key counting attempts on the account an email names, or
// would name: it is the same whether the account exists or not, and whether
// the address is well formed or not.
func AccountKey(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return accountPrefix + hex.EncodeToString(h[:])
}

// AddrKey is the key counting attempts from a client address, given as
// http.Request.RemoteAddr ("ip:port", "[ipv6]:port") or a bare IP. IPv6
// addresses count by their /64; IPv4-mapped ones as IPv4. Whatever does not
// parse shares one key.
func AddrKey(remote string) string {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		ip = ap.Addr()
	} else if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")); err == nil {
		ip = a
	} else {
		return invalidAddr
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return addrPrefix + ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return invalidAddr
	}
	return addrPrefix + p.String()
}

// policy is the limits of one kind of key.
type policy struct {
	free, limit int // failures without delay; failures that refuse
}

var (
	accountPolicy = policy{free: AccountFree, limit: AccountLimit}
	addrPolicy    = policy{free: AddrLimit, limit: AddrLimit}
)

func policyOf(key string) (policy, error) {
	switch {
	case strings.HasPrefix(key, accountPrefix):
		h := key[len(accountPrefix):]
		if _, err := hex.DecodeString(h); err == nil && len(h) == 2*sha256.Size && h == strings.ToLower(h) {
			return accountPolicy, nil
		}
	case strings.HasPrefix(key, addrPrefix):
		if key == invalidAddr {
			return addrPolicy, nil
		}
		if p, err := netip.ParsePrefix(key[len(addrPrefix):]); err == nil && AddrKey(p.Addr().String()) == key {
			return addrPolicy, nil
		}
		if a, err := netip.ParseAddr(key[len(addrPrefix):]); err == nil && AddrKey(a.String()) == key {
			return addrPolicy, nil
		}
	}
	return policy{}, ErrKey
}

// Decision is Check's answer for one attempt.
type Decision struct {
	// Allowed: verify the attempt's password, after waiting Delay. When
	// false, verify nothing and report nothing to Fail or Succeed.
	Allowed bool
	// Delay is how long to wait before verifying an allowed attempt.
	Delay time.Duration
	// RetryAfter is, for a refused attempt, the instant before which every
	// attempt on the same keys will be refused too (the Retry-After header).
	RetryAfter time.Time
}

// Wait sleeps d.Delay, or until ctx is done.
func (d Decision) Wait(ctx context.Context) error {
	if d.Delay <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// and is the decision for an attempt on both keys: refused if either refuses
// (until both would allow), delayed by the longer delay.
func (d Decision) and(o Decision) Decision {
	switch {
	case d.Allowed && o.Allowed:
		return Decision{Allowed: true, Delay: max(d.Delay, o.Delay)}
	case d.Allowed:
		return o
	case o.Allowed:
		return d
	}
	if o.RetryAfter.After(d.RetryAfter) {
		return o
	}
	return d
}

// Limiter keeps the counts in Postgres. It is safe for concurrent use, and
// any number of Limiters, in any number of processes, over the same database
// share them.
type Limiter struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock makes the Limiter read the time from now (tests use a clock they
// can advance). The default is the system clock.
func WithClock(now func() time.Time) Option {
	return func(l *Limiter) {
		if now != nil {
			l.now = now
		}
	}
}

// New makes a Limiter over the database that holds the login_throttle table.
func New(pool *pgxpool.Pool, opts ...Option) *Limiter {
	l := &Limiter{pool: pool, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// clock reads the time at the database's precision.
func (l *Limiter) clock() time.Time { return l.now().UTC().Truncate(time.Microsecond) }

// Check decides whether an attempt on keys may go ahead and, if it may,
// reserves it on every key until Fail or Succeed reports its outcome.
func (l *Limiter) Check(ctx context.Context, keys ...string) (Decision, error) {
	ks, err := parseKeys(keys)
	if err != nil {
		return Decision{}, fmt.Errorf("throttle: check: %w", err)
	}
	now := l.clock()
	d := Decision{Allowed: true}
	err = l.update(ctx, ks, now, func(r *row, p policy) {
		d = d.and(r.decide(now, p))
	}, func(r *row, _ policy) bool {
		if !d.Allowed {
			return false // nothing is reserved for a refused attempt
		}
		r.pending++
		r.pendingAt = now
		return true
	})
	if err != nil {
		return Decision{}, fmt.Errorf("throttle: check: %w", err)
	}
	return d, nil
}

// Fail counts a failed attempt on every key (and ends the attempt's
// reservation). Report every failure alike: wrong password, unknown email,
// account without a password.
func (l *Limiter) Fail(ctx context.Context, keys ...string) error {
	ks, err := parseKeys(keys)
	if err != nil {
		return fmt.Errorf("throttle: fail: %w", err)
	}
	now := l.clock()
	err = l.update(ctx, ks, now, nil, func(r *row, p policy) bool {
		if r.pending > 0 {
			r.pending--
		}
		if r.failures == 0 {
			r.windowStart = now
		}
		r.failures++
		if r.lockedUntil.IsZero() && r.failures >= p.limit {
			r.lockedUntil = now.Add(Lockout)
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("throttle: fail: %w", err)
	}
	return nil
}

// Succeed reports a successful attempt (or a password reset): account keys are
// cleared, failures and refusal alike; on address keys it only ends the
// attempt's reservation, since one good password from an address says nothing
// of the other attempts from it.
func (l *Limiter) Succeed(ctx context.Context, keys ...string) error {
	ks, err := parseKeys(keys)
	if err != nil {
		return fmt.Errorf("throttle: succeed: %w", err)
	}
	b := &pgx.Batch{}
	for _, k := range ks {
		if k.policy == accountPolicy {
			b.Queue(`DELETE FROM login_throttle WHERE key = $1`, k.key)
		} else {
			b.Queue(`UPDATE login_throttle SET pending = pending - 1 WHERE key = $1 AND pending > 0`, k.key)
		}
	}
	if err := l.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("throttle: succeed: %w", err)
	}
	return nil
}

// Purge deletes the rows that no longer matter (no refusal running, the window
// over, no reservation alive) and says how many it deleted. Run it now and
// then; the table then holds only the last quarter-hour's activity.
func (l *Limiter) Purge(ctx context.Context) (int64, error) {
	now := l.clock()
	tag, err := l.pool.Exec(ctx, `
		DELETE FROM login_throttle
		WHERE CASE WHEN locked_until IS NOT NULL THEN locked_until <= $1
		           ELSE failures = 0 OR window_start <= $2 END
		  AND (pending = 0 OR pending_at <= $3)`,
		now, now.Add(-Window), now.Add(-PendingTTL))
	if err != nil {
		return 0, fmt.Errorf("throttle: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}

// row is one key's state.
type row struct {
	key         string
	windowStart time.Time
	failures    int
	pending     int
	pendingAt   time.Time // zero when nothing was ever reserved
	lockedUntil time.Time // zero when not refused
}

// settle brings r up to now: forgets stale reservations, ends a refusal that
// is over and a window that is over.
func (r *row) settle(now time.Time) {
	if r.pending > 0 && !now.Before(r.pendingAt.Add(PendingTTL)) {
		r.pending = 0
	}
	switch {
	case !r.lockedUntil.IsZero():
		if !now.Before(r.lockedUntil) {
			r.lockedUntil = time.Time{}
			r.failures = 0
		}
	case r.failures > 0 && !now.Before(r.windowStart.Add(Window)):
		r.failures = 0
	}
}

// decide is the decision for one more attempt on a settled row.
func (r *row) decide(now time.Time, p policy) Decision {
	if !r.lockedUntil.IsZero() {
		return Decision{RetryAfter: r.lockedUntil}
	}
	n := r.failures + r.pending // reserved attempts count as failures
	switch {
	case n >= p.limit:
		return Decision{RetryAfter: now.Add(BusyRetry)}
	case n >= p.free:
		return Decision{Allowed: true, Delay: delay(n - p.free)}
	}
	return Decision{Allowed: true}
}

// delay is the wait before an attempt that follows excess failures past the
// free ones: BaseDelay doubled excess times, at most MaxDelay.
func delay(excess int) time.Duration {
	d := BaseDelay
	for range excess {
		if d >= MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, MaxDelay)
}

type parsedKey struct {
	key    string
	policy policy
}

// parseKeys checks keys, drops repeats and sorts them, the order every
// transaction locks rows in, so two never wait for each other.
func parseKeys(keys []string) ([]parsedKey, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	out := make([]parsedKey, 0, len(keys))
	for _, k := range keys {
		p, err := policyOf(k) // the key is not quoted: it might be an email
		if err != nil {
			return nil, err
		}
		out = append(out, parsedKey{k, p})
	}
	slices.SortFunc(out, func(a, b parsedKey) int { return cmp.Compare(a.key, b.key) })
	return slices.CompactFunc(out, func(a, b parsedKey) bool { return a.key == b.key }), nil
}

// errNoWrite rolls back an update that decided to write nothing.
var errNoWrite = errors.New("nothing to write")

// update runs, in one transaction holding the keys' rows locked (created
// first when missing), look on every settled row, then change on every row,
// and writes the rows back. A change returning false writes nothing at all.
func (l *Limiter) update(ctx context.Context, ks []parsedKey, now time.Time, look func(*row, policy), change func(*row, policy) bool) error {
	keys := make([]string, len(ks))
	for i, k := range ks {
		keys[i] = k.key
	}
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`
			INSERT INTO login_throttle (key, window_start, updated_at)
			SELECT k, $2, $2 FROM unnest($1::text[]) AS k ORDER BY k
			ON CONFLICT (key) DO NOTHING`, keys, now)
		b.Queue(`
			SELECT key, window_start, failures, pending, pending_at, locked_until
			FROM login_throttle WHERE key = ANY($1) ORDER BY key FOR UPDATE`, keys)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		got, err := pgx.CollectRows(rows, func(rs pgx.CollectableRow) (*row, error) {
			var (
				r                      row
				pendingAt, lockedUntil *time.Time
			)
			if err := rs.Scan(&r.key, &r.windowStart, &r.failures, &r.pending, &pendingAt, &lockedUntil); err != nil {
				return nil, err
			}
			r.windowStart = r.windowStart.UTC()
			if pendingAt != nil {
				r.pendingAt = pendingAt.UTC()
			}
			if lockedUntil != nil {
				r.lockedUntil = lockedUntil.UTC()
			}
			return &r, nil
		})
		if err != nil {
			br.Close()
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		if len(got) != len(ks) {
			return fmt.Errorf("locked %d rows for %d keys", len(got), len(ks))
		}
		for i, r := range got {
			r.settle(now)
			if look != nil {
				look(r, ks[i].policy)
			}
		}
		w := &pgx.Batch{}
		for i, r := range got {
			if !change(r, ks[i].policy) {
				return errNoWrite
			}
			w.Queue(`
				UPDATE login_throttle
				SET window_start = $2, failures = $3, pending = $4, pending_at = $5, locked_until = $6, updated_at = $7
				WHERE key = $1`,
				r.key, r.windowStart, r.failures, r.pending, nullTime(r.pendingAt), nullTime(r.lockedUntil), now)
		}
		return tx.SendBatch(ctx, w).Close()
	})
	if errors.Is(err, errNoWrite) {
		return nil
	}
	return err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
