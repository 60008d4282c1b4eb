package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/schema"
	"github.com/portico-health/portico/internal/testpg"
	"github.com/portico-health/portico/internal/throttle"
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

func newLimiter(t *testing.T) (*throttle.Limiter, *clock, *pgxpool.Pool) {
	t.Helper()
	pool := testpg.NewPool(t)
	if err := pgdb.Migrate(context.Background(), pool, schema.Migrations()); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	return throttle.New(pool, throttle.WithClock(c.Now)), c, pool
}

var (
	ada   = throttle.AccountKey("ada@harbor.example")
	home  = throttle.AddrKey("192.0.2.7:51234")
	other = throttle.AddrKey("198.51.100.9:4444")
)

func check(t *testing.T, l *throttle.Limiter, keys ...string) throttle.Decision {
	t.Helper()
	d, err := l.Check(context.Background(), keys...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func fail(t *testing.T, l *throttle.Limiter, keys ...string) {
	t.Helper()
	if err := l.Fail(context.Background(), keys...); err != nil {
		t.Fatal(err)
	}
}

// attempt is one failed sign-in: checked, allowed with delay want, failed.
func attempt(t *testing.T, l *throttle.Limiter, want time.Duration, keys ...string) {
	t.Helper()
	d := check(t, l, keys...)
	if !d.Allowed || d.Delay != want {
		t.Fatalf("decision %+v, want allowed after %v", d, want)
	}
	fail(t, l, keys...)
}

func failures(t *testing.T, pool *pgxpool.Pool, key string) (failures, pending int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT failures, pending FROM login_throttle WHERE key = $1`, key).Scan(&failures, &pending)
	if err != nil {
		t.Fatalf("row of %s: %v", key, err)
	}
	return failures, pending
}

func TestFreeAttemptsThenGrowingDelaysThenRefusal(t *testing.T) {
	l, c, _ := newLimiter(t)
	want := []time.Duration{0, 0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if len(want) != throttle.AccountLimit || throttle.AccountFree != 5 || throttle.MaxDelay != 8*time.Second {
		t.Fatal("the test's schedule no longer matches the policy")
	}
	for i, w := range want {
		d := check(t, l, ada, home)
		if !d.Allowed || d.Delay != w {
			t.Fatalf("attempt %d: %+v, want allowed after %v", i+1, d, w)
		}
		fail(t, l, ada, home)
		c.Advance(20 * time.Second)
	}
	tenth := c.Now().Add(-20 * time.Second)
	d := check(t, l, ada, home)
	if d.Allowed || !d.RetryAfter.Equal(tenth.Add(15*time.Minute)) {
		t.Fatalf("after 10 failures: %+v, want refused until 15 minutes after the tenth (%v)", d, tenth.Add(15*time.Minute))
	}
	// From any address, and alone.
	if d := check(t, l, ada, other); d.Allowed {
		t.Fatalf("refused account allowed from another address: %+v", d)
	}
	if d := check(t, l, ada); d.Allowed {
		t.Fatalf("refused account allowed: %+v", d)
	}
	// Another account from the same address is unaffected.
	if d := check(t, l, throttle.AccountKey("bob@harbor.example"), home); !d.Allowed || d.Delay != 0 {
		t.Fatalf("another account: %+v, want allowed at once", d)
	}
}

func TestRefusalEnds(t *testing.T) {
	l, c, pool := newLimiter(t)
	for range throttle.AccountLimit {
		fail(t, l, ada)
	}
	d := check(t, l, ada)
	if d.Allowed || !d.RetryAfter.Equal(c.Now().Add(throttle.Lockout)) {
		t.Fatalf("%+v, want refused for %v", d, throttle.Lockout)
	}
	// Trying while refused neither extends nor counts.
	c.Advance(throttle.Lockout - time.Microsecond)
	if d2 := check(t, l, ada); d2.Allowed || !d2.RetryAfter.Equal(d.RetryAfter) {
		t.Fatalf("just before the end: %+v, want refused until %v", d2, d.RetryAfter)
	}
	c.Advance(time.Microsecond)
	// A clean slate: the free attempts again, then the delays.
	for range throttle.AccountFree {
		attempt(t, l, 0, ada)
	}
	if f, _ := failures(t, pool, ada); f != throttle.AccountFree {
		t.Fatalf("%d failures after the refusal, want %d", f, throttle.AccountFree)
	}
	attempt(t, l, time.Second, ada)
}

func TestWindowStartsAtFirstFailure(t *testing.T) {
	l, c, _ := newLimiter(t)
	attempt(t, l, 0, ada)
	c.Advance(14 * time.Minute)
	for range throttle.AccountFree - 1 {
		attempt(t, l, 0, ada)
	}
	c.Advance(time.Minute - time.Microsecond)
	if d := check(t, l, ada); d.Delay != time.Second {
		t.Fatalf("5 failures within the window: %+v, want a second's delay", d)
	}
	// 15 minutes after the first failure the window is over, although the
	// last four are a minute old. (The attempt just checked is in flight.)
	c.Advance(time.Microsecond)
	if d := check(t, l, ada); !d.Allowed || d.Delay != 0 {
		t.Fatalf("after the window: %+v, want allowed at once", d)
	}
}

func TestSucceedClearsTheAccountNotTheAddress(t *testing.T) {
	l, _, pool := newLimiter(t)
	ctx := context.Background()
	for range 9 {
		fail(t, l, ada, home)
	}
	d := check(t, l, ada, home)
	if d.Delay != throttle.MaxDelay {
		t.Fatalf("after 9 failures: %+v", d)
	}
	if err := l.Succeed(ctx, ada, home); err != nil {
		t.Fatal(err)
	}
	if d := check(t, l, ada, home); !d.Allowed || d.Delay != 0 {
		t.Fatalf("after success: %+v, want allowed at once", d)
	}
	if err := l.Succeed(ctx, ada, home); err != nil {
		t.Fatal(err)
	}
	if f, p := failures(t, pool, home); f != 9 || p != 0 {
		t.Fatalf("address: %d failures, %d pending; want 9 and none (success releases, does not forgive)", f, p)
	}
	// A refused account is lifted too (a password reset ends in Succeed).
	for range throttle.AccountLimit {
		fail(t, l, ada)
	}
	if d := check(t, l, ada); d.Allowed {
		t.Fatal("not refused")
	}
	if err := l.Succeed(ctx, ada); err != nil {
		t.Fatal(err)
	}
	if d := check(t, l, ada); !d.Allowed || d.Delay != 0 {
		t.Fatalf("after reset: %+v", d)
	}
}

func TestAddressLimitIsIndependentOfAccounts(t *testing.T) {
	l, c, _ := newLimiter(t)
	// Password spraying: one try per account, many accounts, one address.
	for i := range throttle.AddrLimit {
		attempt(t, l, 0, throttle.AccountKey(fmt.Sprintf("user%d@harbor.example", i)), home)
	}
	last := c.Now()
	fresh := throttle.AccountKey("new@harbor.example")
	d := check(t, l, fresh, home)
	if d.Allowed || !d.RetryAfter.Equal(last.Add(throttle.Lockout)) {
		t.Fatalf("after %d failures from one address: %+v, want refused until %v", throttle.AddrLimit, d, last.Add(throttle.Lockout))
	}
	// The same accounts from elsewhere are fine: each has one failure.
	if d := check(t, l, throttle.AccountKey("user0@harbor.example"), other); !d.Allowed || d.Delay != 0 {
		t.Fatalf("from another address: %+v", d)
	}
	// An IPv6 client cannot hop within its /64.
	v6 := func(host string) string { return throttle.AddrKey("[2001:db8:7:7::" + host + "]:443") }
	for i := range throttle.AddrLimit {
		fail(t, l, fresh, v6(fmt.Sprintf("%x", i+1)))
	}
	if d := check(t, l, throttle.AccountKey("x@y.example"), v6("ffff")); d.Allowed {
		t.Fatal("another address in the same /64 was allowed")
	}
	// Both refused: the later end is the one to wait for.
	c.Advance(time.Minute)
	for range throttle.AccountLimit {
		fail(t, l, ada)
	}
	if d := check(t, l, ada, home); d.Allowed || !d.RetryAfter.Equal(c.Now().Add(throttle.Lockout)) {
		t.Fatalf("both refused: %+v, want the account's later end %v", d, c.Now().Add(throttle.Lockout))
	}
}

// The throttle cannot tell known from unknown accounts: it never sees them,
// only the key of what was typed, which holds no address.
func TestAccountKeysHoldNoEmail(t *testing.T) {
	l, _, pool := newLimiter(t)
	ctx := context.Background()
	for _, e := range []string{" Ada@Harbor.Example", "ada@harbor.example "} {
		if throttle.AccountKey(e) != ada {
			t.Errorf("AccountKey(%q) differs from the normalised address's", e)
		}
	}
	if !strings.HasPrefix(ada, "account:") || len(ada) != len("account:")+64 {
		t.Fatalf("account key %q", ada)
	}
	fail(t, l, ada, throttle.AccountKey("not an email"), throttle.AddrKey("garbage"))
	var dump string
	if err := pool.QueryRow(ctx, `SELECT string_agg(t::text, ' ') FROM login_throttle t`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(dump), "ada") || strings.Contains(dump, "@") || strings.Contains(dump, "not an") {
		t.Fatalf("an address is in the table: %s", dump)
	}
	// The table refuses one even from another writer.
	if _, err := pool.Exec(ctx, `INSERT INTO login_throttle (key, window_start, updated_at) VALUES ('account:ada@harbor.example', now(), now())`); err == nil {
		t.Fatal("the table took an email key")
	}
}

func TestKeys(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:51234":            "addr:192.0.2.7",
		"192.0.2.7":                  "addr:192.0.2.7",
		"[::ffff:192.0.2.7]:80":      "addr:192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "addr:2001:db8:1:2::/64",
		"2001:db8:1:2::9":            "addr:2001:db8:1:2::/64",
		"[fe80::1%eth0]:22":          "addr:fe80::/64",
		"::1":                        "addr:::/64",
		"":                           "addr:invalid",
		"garbage:80":                 "addr:invalid",
	} {
		if got := throttle.AddrKey(in); got != want {
			t.Errorf("AddrKey(%q) = %q, want %q", in, got, want)
		}
	}

	l := throttle.New(nil) // refused before any database is touched
	ctx := context.Background()
	if _, err := l.Check(ctx); err == nil {
		t.Error("Check without keys succeeded")
	}
	for _, bad := range []string{"ada@harbor.example", "account:ada@harbor.example", "account:" + strings.Repeat("A", 64), "addr:192.0.2.7:80", "addr:::ffff:192.0.2.7", "addr:2001:db8::1", "addr:", "user:1"} {
		_, err := l.Check(ctx, bad)
		if !errors.Is(err, throttle.ErrKey) {
			t.Errorf("Check(%q): %v, want ErrKey", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "ada") {
			t.Errorf("the error quotes the key: %v", err)
		}
		if err := l.Fail(ctx, ada, bad); !errors.Is(err, throttle.ErrKey) {
			t.Errorf("Fail(%q): %v, want ErrKey", bad, err)
		}
		if err := l.Succeed(ctx, bad); !errors.Is(err, throttle.ErrKey) {
			t.Errorf("Succeed(%q): %v, want ErrKey", bad, err)
		}
	}
}

// Several processes: two limiters, each with its own pool, on one database;
// parallel failures are all counted, none twice, and none deadlocks.
func TestConcurrentFailuresAreCountedExactly(t *testing.T) {
	url := testpg.NewURL(t)
	ctx := context.Background()
	c := newClock()
	var limiters []*throttle.Limiter
	for range 2 {
		pool, err := pgdb.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if err := pgdb.Migrate(ctx, pool, schema.Migrations()); err != nil {
			t.Fatal(err)
		}
		limiters = append(limiters, throttle.New(pool, throttle.WithClock(c.Now)))
	}
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			keys := []string{ada, home}
			if i%2 == 1 {
				keys = []string{home, ada} // either order: rows are locked sorted
			}
			errs <- limiters[i%2].Fail(ctx, keys...)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, k := range []string{ada, home} {
		if f, _ := failures(t, pool, k); f != n {
			t.Errorf("%s: %d failures counted, want %d", k[:8], f, n)
		}
	}
	if d := check(t, limiters[0], ada); d.Allowed {
		t.Fatalf("%d failures and still allowed: %+v", n, d)
	}
}

// A burst of simultaneous guesses gets no more through than guesses one at a
// time: Check reserves each attempt before the password is verified.
func TestConcurrentChecksGetNoMoreThanTheLimit(t *testing.T) {
	l, c, pool := newLimiter(t)
	ctx := context.Background()
	const n = 40
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed []throttle.Decision
		refused int
	)
	for range n {
		wg.Go(func() {
			d, err := l.Check(ctx, ada, home)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if d.Allowed {
				allowed = append(allowed, d)
			} else {
				refused++
				if !d.RetryAfter.Equal(c.Now().Add(throttle.BusyRetry)) {
					t.Errorf("busy refusal until %v, want %v", d.RetryAfter, c.Now().Add(throttle.BusyRetry))
				}
			}
		})
	}
	wg.Wait()
	if len(allowed) != throttle.AccountLimit || refused != n-throttle.AccountLimit {
		t.Fatalf("%d allowed, %d refused; want %d allowed", len(allowed), refused, throttle.AccountLimit)
	}
	delayed := 0
	for _, d := range allowed {
		if d.Delay > 0 {
			delayed++
		}
	}
	if delayed != throttle.AccountLimit-throttle.AccountFree {
		t.Fatalf("%d of the allowed were delayed, want %d", delayed, throttle.AccountLimit-throttle.AccountFree)
	}
	if f, p := failures(t, pool, home); f != 0 || p != throttle.AccountLimit {
		t.Fatalf("address: %d failures, %d pending; want 0 and %d", f, p, throttle.AccountLimit)
	}
	// The outcomes arrive: all wrong. The account is refused for Lockout.
	for range throttle.AccountLimit {
		fail(t, l, ada, home)
	}
	if f, p := failures(t, pool, ada); f != throttle.AccountLimit || p != 0 {
		t.Fatalf("account: %d failures, %d pending", f, p)
	}
	if d := check(t, l, ada); d.Allowed || !d.RetryAfter.Equal(c.Now().Add(throttle.Lockout)) {
		t.Fatalf("%+v, want refused for %v", d, throttle.Lockout)
	}
}

func TestUnreportedReservationsLapse(t *testing.T) {
	l, c, _ := newLimiter(t)
	for range throttle.AccountLimit {
		check(t, l, ada) // and the process dies before reporting
	}
	if d := check(t, l, ada); d.Allowed {
		t.Fatalf("%+v, want refused while %d attempts are in flight", d, throttle.AccountLimit)
	}
	c.Advance(throttle.PendingTTL - time.Second)
	if d := check(t, l, ada); d.Allowed {
		t.Fatal("reservations lapsed early")
	}
	c.Advance(time.Second)
	if d := check(t, l, ada); !d.Allowed || d.Delay != 0 {
		t.Fatalf("after %v: %+v, want allowed at once", throttle.PendingTTL, d)
	}
}

func TestPurgeDeletesOnlyRowsThatNoLongerMatter(t *testing.T) {
	l, c, pool := newLimiter(t)
	ctx := context.Background()
	key := func(i int) string { return throttle.AccountKey(fmt.Sprintf("p%d@harbor.example", i)) }
	refusedLong := key(1) // refused, still at purge time
	windowOver := key(2)  // two failures, window over at purge time
	refusalOver := key(3) // refused, over at purge time
	for range throttle.AccountLimit {
		fail(t, l, refusalOver)
	}
	fail(t, l, windowOver)
	fail(t, l, windowOver)
	c.Advance(10 * time.Minute)
	for range throttle.AccountLimit {
		fail(t, l, refusedLong)
	}
	recent := key(4) // a failure within the window
	fail(t, l, recent)
	c.Advance(5 * time.Minute)
	inFlight := key(5) // checked, not yet reported
	check(t, l, inFlight)

	n, err := l.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("purged %d rows, want 2", n)
	}
	for _, k := range []string{refusedLong, recent, inFlight} {
		failures(t, pool, k) // fails the test if gone
	}
	c.Advance(throttle.Lockout)
	if n, err := l.Purge(ctx); err != nil || n != 3 {
		t.Fatalf("second purge: %d, %v; want the other 3", n, err)
	}
}

func TestDecisionWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := (throttle.Decision{Allowed: true}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := (throttle.Decision{Allowed: true, Delay: 20 * time.Millisecond}).Wait(ctx); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("waited %v: %v", time.Since(start), err)
	}
	cancel()
	if err := (throttle.Decision{Allowed: true, Delay: time.Hour}).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}
