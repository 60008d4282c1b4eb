package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/testpg"
	"github.com/portico-health/portico/projections"
)

// counter counts events per stream with a plain increment and no version
// guard, so an event applied twice shows as a wrong count: the checkpoint
// alone must make application effectively once.
type counter struct {
	name     string
	critical bool
	poisoned atomic.Bool // while set, "Poison" events fail
}

func (c *counter) Name() string             { return c.name }
func (c *counter) Categories() []string     { return []string{"ctr"} }
func (c *counter) Critical() bool           { return c.critical }
func (c *counter) Tables() []string         { return []string{c.name + "_counts"} }
func (c *counter) ReportingViews() []string { return nil }
func (c *counter) Setup(ctx context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T(c.name+"_counts") + ` (stream text PRIMARY KEY, n bigint NOT NULL, sum bigint NOT NULL)`)
	return nil
}
func (c *counter) Apply(ctx context.Context, w *projections.Writer, e eventstore.Envelope) error {
	switch e.Type {
	case "Incremented":
		var d struct{ By int64 }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T(c.name+"_counts")+` AS t (stream, n, sum) VALUES ($1, 1, $2)
			ON CONFLICT (stream) DO UPDATE SET n = t.n + 1, sum = t.sum + excluded.sum`, e.Stream, d.By)
		return nil
	case "Poison":
		if c.poisoned.Load() {
			return errors.New("cannot digest this event")
		}
		return nil
	}
	return projections.Unknown(e)
}

type env struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
	url   string
}

func newEnv(t *testing.T) env {
	url := testpg.NewURL(t)
	pool, err := pgdb.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, err := pgstore.Open(context.Background(), pool, pgstore.Config{PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return env{pool: pool, store: store, url: url}
}

func (v env) engine(t *testing.T, ps ...projections.Projection) *projections.Engine {
	e, err := projections.New(projections.Config{
		Pool: v.pool, Store: v.store, Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), MaxRetries: 2, RetryInterval: time.Millisecond, LeaseRetry: 200 * time.Millisecond,
		RebuildBatch: 300,
	}, ps...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// run starts e until the returned stop is called.
func run(e *projections.Engine) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func (v env) append(t *testing.T, stream, typ string, by int) eventstore.AppendResult {
	t.Helper()
	res, err := v.store.Append(context.Background(), stream, eventstore.Any(), eventstore.EventData{
		ID: uuid.New(), Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"by":%d}`, by)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (v env) waitFor(t *testing.T, name string, pos eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var got int64
		err := v.pool.QueryRow(context.Background(), `SELECT position FROM projection.checkpoints WHERE name = $1 AND state = 'live'`, name).Scan(&got)
		if err == nil && got >= int64(pos) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("projection %s never reached position %d", name, pos)
}

// counts reads the rm view: what readers see.
func (v env) counts(t *testing.T, table string) map[string][2]int64 {
	t.Helper()
	rows, err := v.pool.Query(context.Background(), `SELECT stream, n, sum FROM rm.`+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for rows.Next() {
		var s string
		var n, sum int64
		if err := rows.Scan(&s, &n, &sum); err != nil {
			t.Fatal(err)
		}
		out[s] = [2]int64{n, sum}
	}
	return out
}

func TestLiveProjectionAppliesEveryEventOnceAcrossRestarts(t *testing.T) {
	v := newEnv(t)
	c := &counter{name: "ctr_live"}
	e := v.engine(t, c)
	want := map[string][2]int64{}
	var last eventstore.Position

	// Write while the projection is stopped and started again and again,
	// cancelled wherever it happens to be.
	for round := range 6 {
		stop := run(e)
		for i := range 150 {
			stream := fmt.Sprintf("ctr-%d", i%7)
			res := v.append(t, stream, "Incremented", i)
			w := want[stream]
			want[stream] = [2]int64{w[0] + 1, w[1] + int64(i)}
			last = res.Position
		}
		time.Sleep(time.Duration(round*7) * time.Millisecond)
		stop()
	}
	stop := run(e)
	defer stop()
	v.waitFor(t, c.name, last)
	got := v.counts(t, "ctr_live_counts")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read model after restarts = %v, want %v (an event applied twice or lost)", got, want)
	}

	// A rebuild through the batched path gives the identical model.
	res, err := e.Rebuild(context.Background(), c.name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 2 || res.Events != 900 {
		t.Fatalf("rebuild = %+v, want generation 2 from 900 events", res)
	}
	if rebuilt := v.counts(t, "ctr_live_counts"); fmt.Sprint(rebuilt) != fmt.Sprint(want) {
		t.Fatalf("rebuilt model = %v, want %v", rebuilt, want)
	}
	// The live runner follows the new generation.
	more := v.append(t, "ctr-0", "Incremented", 1000)
	v.waitFor(t, c.name, more.Position)
	if got := v.counts(t, "ctr_live_counts")["ctr-0"]; got[0] != want["ctr-0"][0]+1 {
		t.Fatalf("after the switch, ctr-0 = %v, want one more event than %v", got, want["ctr-0"])
	}
}

func TestRebuildWhileWritingSwitchesWithoutLosingEvents(t *testing.T) {
	v := newEnv(t)
	c := &counter{name: "ctr_switch"}
	e := v.engine(t, c)
	stop := run(e)
	defer stop()
	for i := range 2000 {
		v.append(t, fmt.Sprintf("ctr-%d", i%5), "Incremented", 1)
	}
	writing := make(chan eventstore.Position)
	go func() {
		var last eventstore.Position
		for range 500 {
			last = v.append(t, "ctr-9", "Incremented", 1).Position
		}
		writing <- last
	}()
	if _, err := e.Rebuild(context.Background(), c.name, nil); err != nil {
		t.Fatal(err)
	}
	last := <-writing
	v.waitFor(t, c.name, last)
	got := v.counts(t, "ctr_switch_counts")
	if got["ctr-9"][0] != 500 || got["ctr-0"][0] != 400 {
		t.Fatalf("after a rebuild during writes: ctr-9 = %v (want 500), ctr-0 = %v (want 400)", got["ctr-9"], got["ctr-0"])
	}
}

func TestPoisonEventIsDeadLetteredAndTheProjectionGoesOn(t *testing.T) {
	v := newEnv(t)
	c := &counter{name: "ctr_poison"}
	c.poisoned.Store(true)
	e := v.engine(t, c)
	stop := run(e)
	defer stop()
	v.append(t, "ctr-a", "Incremented", 1)
	bad := v.append(t, "ctr-a", "Poison", 0)
	last := v.append(t, "ctr-a", "Incremented", 2)
	v.waitFor(t, c.name, last.Position)
	if got := v.counts(t, "ctr_poison_counts")["ctr-a"]; got != [2]int64{2, 3} {
		t.Fatalf("counts = %v, want both good events applied", got)
	}
	var pos int64
	var errText string
	if err := v.pool.QueryRow(context.Background(), `SELECT position, error FROM projection.dead_letters WHERE name = $1`, c.name).Scan(&pos, &errText); err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if pos != int64(bad.Position) || errText == "" {
		t.Fatalf("dead letter at %d (%q), want the poison event at %d", pos, errText, bad.Position)
	}
	st, err := e.Status(context.Background())
	if err != nil || st[0].Dead != 1 || st[0].State != "running" {
		t.Fatalf("status = %+v, %v; want running with 1 dead letter", st, err)
	}
	// After the fix, `projections retry` resolves it.
	c.poisoned.Store(false)
	resolved, failed, err := e.RetryDeadLetters(context.Background(), c.name)
	if err != nil || resolved != 1 || failed != 0 {
		t.Fatalf("retry = %d resolved, %d failed, %v", resolved, failed, err)
	}
	if st, _ := e.Status(context.Background()); st[0].Dead != 0 {
		t.Fatalf("dead letters after retry = %d", st[0].Dead)
	}
}

func TestCriticalProjectionHaltsAndNeverSkips(t *testing.T) {
	v := newEnv(t)
	c := &counter{name: "ctr_critical", critical: true}
	c.poisoned.Store(true)
	e := v.engine(t, c)
	stop := run(e)
	defer stop()
	first := v.append(t, "ctr-a", "Incremented", 1)
	v.append(t, "ctr-a", "Poison", 0)
	last := v.append(t, "ctr-a", "Incremented", 2)
	v.waitFor(t, c.name, first.Position)

	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st[0].State == "halted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("critical projection never halted: %+v", st[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.Ready(context.Background()); err == nil {
		t.Fatal("readiness passes while a critical projection is halted")
	}
	time.Sleep(300 * time.Millisecond)
	if got := v.counts(t, "ctr_critical_counts")["ctr-a"]; got != [2]int64{1, 1} {
		t.Fatalf("a halted projection went past the poison event: %v", got)
	}
	var n int
	_ = v.pool.QueryRow(context.Background(), `SELECT count(*) FROM projection.dead_letters`).Scan(&n)
	if n != 0 {
		t.Fatal("a critical projection dead-lettered an event")
	}
	// Fixed: it resumes by itself and is ready again.
	c.poisoned.Store(false)
	v.waitFor(t, c.name, last.Position)
	if err := e.Ready(context.Background()); err != nil {
		t.Fatalf("still not ready after the fix: %v", err)
	}
}

func TestUnknownEventsAreSkippedLiveAndFailARebuild(t *testing.T) {
	v := newEnv(t)
	c := &counter{name: "ctr_unknown"}
	e := v.engine(t, c)
	stop := run(e)
	defer stop()
	v.append(t, "ctr-a", "Incremented", 1)
	v.append(t, "ctr-a", "SomethingNew", 0)
	last := v.append(t, "ctr-a", "Incremented", 1)
	v.waitFor(t, c.name, last.Position)
	st, err := e.Status(context.Background())
	if err != nil || st[0].Skipped != 1 {
		t.Fatalf("status = %+v, %v; want one skipped unknown event", st, err)
	}
	if _, err := e.Rebuild(context.Background(), c.name, nil); !errors.Is(err, projections.ErrUnknownEvent) {
		t.Fatalf("rebuild over an unknown event = %v, want ErrUnknownEvent", err)
	}
	// The failed rebuild left the live model serving.
	if got := v.counts(t, "ctr_unknown_counts")["ctr-a"]; got[0] != 2 {
		t.Fatalf("live model after a failed rebuild = %v", got)
	}
}

func TestOnlyOneProcessRunsAProjectionAndAnotherTakesOver(t *testing.T) {
	v := newEnv(t)
	c1, c2 := &counter{name: "ctr_lease"}, &counter{name: "ctr_lease"}
	e1, e2 := v.engine(t, c1), v.engine(t, c2)
	stop1 := run(e1)
	time.Sleep(300 * time.Millisecond)
	stop2 := run(e2)
	defer stop2()

	holders := func() int {
		var n int
		if err := v.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND objsubid = 2 AND granted AND classid = $1`, uint32(0x50524A)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 300 {
		v.append(t, "ctr-a", "Incremented", 1)
		if i%50 == 0 {
			if n := holders(); n != 1 {
				t.Fatalf("%d processes hold the projection's lease, want 1", n)
			}
		}
	}
	stop1() // the holder goes away
	last := v.append(t, "ctr-a", "Incremented", 1)
	start := time.Now()
	v.waitFor(t, "ctr_lease", last.Position)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("takeover took %v", took)
	}
	if got := v.counts(t, "ctr_lease_counts")["ctr-a"]; got[0] != 301 {
		t.Fatalf("count after takeover = %v, want 301", got)
	}
}

func TestAsOfReplayShowsThePastAndLeavesNothingBehind(t *testing.T) {
	v := newEnv(t)
	c := &counter{name: "ctr_replay"}
	e := v.engine(t, c)
	var mid eventstore.Position
	for i := range 10 {
		res := v.append(t, "ctr-a", "Incremented", 1)
		if i == 3 {
			mid = res.Position
		}
	}
	var n int64
	err := e.Replay(context.Background(), projections.AsOf{Position: mid}, func(ctx context.Context, tx pgx.Tx, schema string, res projections.ReplayResult) error {
		return tx.QueryRow(ctx, `SELECT n FROM `+pgx.Identifier{schema, "ctr_replay_counts"}.Sanitize()+` WHERE stream = 'ctr-a'`).Scan(&n)
	})
	if err != nil || n != 4 {
		t.Fatalf("as of the 4th event the count was %d (%v), want 4", n, err)
	}
	var left int
	_ = v.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'replay_%'`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d replay schemas left behind", left)
	}
}
