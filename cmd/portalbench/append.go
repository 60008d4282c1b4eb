package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/eventstore"
)

type appendConfig struct {
	DatabaseURL string        `json:"-"`
	Writers     []int         `json:"writers"`
	Duration    time.Duration `json:"-"`
	Warmup      time.Duration `json:"-"`
	Peers       int           `json:"peers"`
	Payload     int           `json:"payload_bytes"`
	Floor       time.Duration `json:"-"`
	Analyze     bool          `json:"analyze"`
	JSON        bool          `json:"-"`

	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
}

// AppendResult is one writer count's measurement.
type AppendResult struct {
	Writers  int     `json:"writers"`
	Peers    int     `json:"peers"`
	Elapsed  float64 `json:"elapsed_s"`
	Appends  int     `json:"appends"`
	Events   int     `json:"events"`
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	// AppendsPerSec and EventsPerSec are equal here (one event per append);
	// both are kept so multi-event runs later read the same.
	AppendsPerSec float64 `json:"appends_per_s"`
	EventsPerSec  float64 `json:"events_per_s"`
	// Commits counts the transactions that wrote the measured events (their
	// distinct xmin): EventsPerCommit is the mean group-commit size.
	Commits         int     `json:"commits"`
	CommitsPerSec   float64 `json:"commits_per_s"`
	EventsPerCommit float64 `json:"events_per_commit"`
	Latency         Latency `json:"latency"`
}

// Floor is the cost of one durable commit on this server with nothing of the
// event store in it: one connection, autocommit UPDATE of one row. At one
// writer an append cannot beat it.
type Floor struct {
	Commits       int     `json:"commits"`
	CommitsPerSec float64 `json:"commits_per_s"`
	Latency       Latency `json:"latency"`
}

type appendReport struct {
	Command     string         `json:"command"`
	Env         Env            `json:"env"`
	Config      appendConfig   `json:"config"`
	Floor       *Floor         `json:"commit_floor,omitempty"`
	Results     []AppendResult `json:"results"`
	Interrupted bool           `json:"interrupted,omitempty"`
}

func runAppend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("append", flag.ContinueOnError)
	var cfg appendConfig
	var writers string
	fs.StringVar(&cfg.DatabaseURL, "database-url", defaultDatabaseURL, "Postgres URL; the database is dropped and recreated, so its name must start with "+benchPrefix)
	fs.StringVar(&writers, "writers", "1,16", "comma list of writer counts, measured one after the other")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per writer count")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each writer count's measurement")
	fs.IntVar(&cfg.Peers, "peers", 1, "separate stores, each with its own pool and group committer, the writers are spread over (simulates several portald processes)")
	fs.IntVar(&cfg.Payload, "payload", 200, "bytes of JSON event data per event (at least 185: ids, clinic, start time; padded with notes)")
	fs.DurationVar(&cfg.Floor, "floor", 2*time.Second, "time to measure the server's bare durable-commit latency first (0 skips it)")
	fs.BoolVar(&cfg.Analyze, "analyze", true, "ANALYZE the event store tables after each warmup, as autovacuum would; without it a server with autovacuum off keeps the plans made when the tables were nearly empty")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("append: unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Writers, err = parseInts(writers); err != nil {
		return fmt.Errorf("-writers: %w", err)
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Floor < 0 {
		return errors.New("-duration must be positive; -warmup and -floor not negative")
	}
	if cfg.Peers < 1 {
		return errors.New("-peers must be at least 1")
	}
	cfg.DurationS, cfg.WarmupS = cfg.Duration.Seconds(), cfg.Warmup.Seconds()

	name, err := databaseName(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	logf("recreating database %s", name)
	if err := resetDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	peers := make([]*peer, 0, cfg.Peers)
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	for range cfg.Peers {
		p, err := openPeer(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		peers = append(peers, p)
	}
	env, err := environment(ctx, peers[0].pool, name)
	if err != nil {
		return err
	}
	report := appendReport{Command: "append", Env: env, Config: cfg}

	if cfg.Floor > 0 {
		logf("measuring the bare commit floor for %s", cfg.Floor)
		floor, err := measureFloor(ctx, peers[0].pool, cfg.Floor)
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return err
		}
		report.Floor = &floor
	}

	for _, n := range cfg.Writers {
		logf("%d writer(s) over %d peer(s): %s warmup, %s measured", n, cfg.Peers, cfg.Warmup, cfg.Duration)
		res, err := measureAppends(ctx, peers, n, cfg)
		if ctx.Err() != nil {
			report.Interrupted = true
			break
		}
		if err != nil {
			return err
		}
		report.Results = append(report.Results, res)
		logf("  %.0f appends/s, p50 %.2f ms, p99 %.2f ms, %d errors", res.AppendsPerSec, res.Latency.P50, res.Latency.P99, res.Errors)
	}

	if cfg.JSON {
		if err := printJSON(report); err != nil {
			return err
		}
	} else {
		report.print()
	}
	if report.Interrupted {
		return errInterrupted
	}
	return nil
}

type writerResult struct {
	latencies      []time.Duration
	errors         int
	firstErr       error
	minPos, maxPos eventstore.Position
}

// measureAppends runs n closed-loop writers spread round-robin over the
// peers: first for the warmup, unrecorded, then (after an optional ANALYZE)
// for the measured window, which ends when the last append started in it
// returns.
func measureAppends(ctx context.Context, peers []*peer, n int, cfg appendConfig) (AppendResult, error) {
	if cfg.Warmup > 0 {
		runWriters(ctx, peers, n, cfg.Payload, cfg.Warmup)
		if ctx.Err() != nil {
			return AppendResult{}, ctx.Err()
		}
	}
	if cfg.Analyze {
		if _, err := peers[0].pool.Exec(ctx, `ANALYZE eventstore.events, eventstore.streams, eventstore.head`); err != nil {
			return AppendResult{}, fmt.Errorf("analyze: %w", err)
		}
	}
	start := time.Now()
	results := runWriters(ctx, peers, n, cfg.Payload, cfg.Duration)
	elapsed := time.Since(start)

	res := AppendResult{Writers: n, Peers: len(peers), Elapsed: elapsed.Seconds()}
	var all []time.Duration
	var minPos, maxPos eventstore.Position
	for _, r := range results {
		all = append(all, r.latencies...)
		res.Errors += r.errors
		if r.firstErr != nil && res.FirstErr == "" {
			res.FirstErr = r.firstErr.Error()
		}
		if r.minPos != 0 && (minPos == 0 || r.minPos < minPos) {
			minPos = r.minPos
		}
		maxPos = max(maxPos, r.maxPos)
	}
	res.Appends = len(all)
	res.Events = len(all)
	res.AppendsPerSec = float64(res.Appends) / elapsed.Seconds()
	res.EventsPerSec = float64(res.Events) / elapsed.Seconds()
	res.Latency = summarise(all)
	if minPos > 0 {
		// Each group commit is one transaction, so the distinct xmin of the
		// measured events counts the commits that wrote them.
		var events int
		err := peers[0].pool.QueryRow(ctx,
			`SELECT count(*), count(DISTINCT xmin::text) FROM eventstore.events WHERE position BETWEEN $1 AND $2`,
			int64(minPos), int64(maxPos)).Scan(&events, &res.Commits)
		if err != nil {
			return res, fmt.Errorf("count commits: %w", err)
		}
		if res.Commits > 0 {
			res.CommitsPerSec = float64(res.Commits) / elapsed.Seconds()
			res.EventsPerCommit = float64(events) / float64(res.Commits)
		}
	}
	return res, nil
}

func runWriters(ctx context.Context, peers []*peer, n, payload int, d time.Duration) []writerResult {
	until := time.Now().Add(d)
	results := make([]writerResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runWriter(ctx, peers[i%len(peers)].store, payload, until)
		}()
	}
	wg.Wait()
	return results
}

func runWriter(ctx context.Context, store eventstore.Store, payload int, until time.Time) writerResult {
	r := writerResult{latencies: make([]time.Duration, 0, 1<<14)}
	pad := strings.Repeat("x", payload) // sliced to size per event
	for ctx.Err() == nil {
		stream := eventstore.StreamName("bench", uuid.NewString())
		event := benchEvent(pad, payload)
		t0 := time.Now()
		if !t0.Before(until) {
			break
		}
		res, err := store.Append(ctx, stream, eventstore.NoStream(), event)
		d := time.Since(t0)
		if err != nil && ctx.Err() != nil {
			break
		}
		if err != nil {
			r.errors++
			if r.firstErr == nil {
				r.firstErr = err
			}
			time.Sleep(10 * time.Millisecond) // no hot loop while Postgres is down
			continue
		}
		r.latencies = append(r.latencies, d)
		if r.minPos == 0 || res.Position < r.minPos {
			r.minPos = res.Position
		}
		r.maxPos = max(r.maxPos, res.Position)
	}
	return r
}

// benchEvent is an appointment-booked-like event with its data padded to
// payload bytes of JSON and the metadata a staff command carries. Its id is
// derived from a fresh command id, as command handlers derive theirs.
func benchEvent(pad string, payload int) eventstore.EventData {
	commandID := uuid.NewString()
	clinicID := "clinic-" + uuid.NewString()[:8]
	// 185 bytes without notes: a smaller -payload gets these 185.
	data := fmt.Appendf(nil, `{"appointment_id":%q,"patient_id":%q,"clinic_id":%q,"starts_at":%q,"notes":"`,
		uuid.NewString(), uuid.NewString(), clinicID,
		time.Now().UTC().Add(72*time.Hour).Truncate(15*time.Minute).Format(time.RFC3339))
	if fill := payload - len(data) - len(`"}`); fill > 0 {
		data = append(data, pad[:fill]...)
	}
	data = append(data, `"}`...)
	return eventstore.EventData{
		ID:            eventstore.DeterministicID(commandID, 0),
		Type:          "AppointmentBooked",
		SchemaVersion: 1,
		Data:          json.RawMessage(data),
		Metadata: eventstore.Metadata{
			ClinicID:      clinicID,
			ActorID:       "staff-" + uuid.NewString(),
			ActorKind:     "staff",
			ActorRole:     "receptionist",
			CorrelationID: uuid.NewString(),
			CausationID:   commandID,
			CommandID:     commandID,
		},
	}
}

// measureFloor times autocommit single-row UPDATEs on one connection: the
// server's own price of a durable commit, one round trip each.
func measureFloor(ctx context.Context, pool *pgxpool.Pool, d time.Duration) (Floor, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Floor{}, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.bench_floor (id int PRIMARY KEY, n bigint NOT NULL);
		INSERT INTO public.bench_floor VALUES (1, 0) ON CONFLICT DO NOTHING`); err != nil {
		return Floor{}, fmt.Errorf("commit floor: %w", err)
	}
	sample := make([]time.Duration, 0, 4096)
	start := time.Now()
	for time.Since(start) < d {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, `UPDATE public.bench_floor SET n = n + 1 WHERE id = 1`, pgx.QueryExecModeSimpleProtocol); err != nil {
			return Floor{}, fmt.Errorf("commit floor: %w", err)
		}
		sample = append(sample, time.Since(t0))
	}
	elapsed := time.Since(start)
	return Floor{Commits: len(sample), CommitsPerSec: float64(len(sample)) / elapsed.Seconds(), Latency: summarise(sample)}, nil
}

func (r appendReport) print() {
	r.Env.print()
	c := r.Config
	analyze := "ANALYZE after warmup"
	if !c.Analyze {
		analyze = "no ANALYZE"
	}
	fmt.Printf("workload    single-event appends to new streams (expected NoStream), %d B JSON data, %d peer(s), %s warmup + %s per writer count, %s\n",
		c.Payload, c.Peers, c.Warmup, c.Duration, analyze)
	if f := r.Floor; f != nil {
		fmt.Printf("floor       bare durable commit (1 conn, UPDATE one row): p50 %s ms, p99 %s ms, %s commits/s\n",
			f2(f.Latency.P50), f2(f.Latency.P99), f0(f.CommitsPerSec))
	}
	fmt.Println()
	rows := [][]string{{"writers", "peers", "appends/s", "events/s", "commits/s", "ev/commit",
		"p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"}}
	for _, x := range r.Results {
		rows = append(rows, []string{
			strconv.Itoa(x.Writers), strconv.Itoa(x.Peers), f0(x.AppendsPerSec), f0(x.EventsPerSec),
			f0(x.CommitsPerSec), f1(x.EventsPerCommit),
			f2(x.Latency.P50), f2(x.Latency.P90), f2(x.Latency.P99), f2(x.Latency.P999), f2(x.Latency.Max),
			strconv.Itoa(x.Errors),
		})
	}
	table(rows)
	for _, x := range r.Results {
		if x.FirstErr != "" {
			fmt.Fprintf(os.Stdout, "\n%d writers, first error: %s\n", x.Writers, x.FirstErr)
		}
	}
}
