package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/projections"
	"github.com/portico-health/portico/projections/patients"
)

const defaultProjlagURL = "postgres://postgres@127.0.0.1:5432/portico_bench_projlag?sslmode=disable"

type projlagConfig struct {
	DatabaseURL string        `json:"-"`
	Rate        float64       `json:"rate_per_s"`
	Duration    time.Duration `json:"-"`
	Warmup      time.Duration `json:"-"`
	Poll        time.Duration `json:"-"`
	Contacts    float64       `json:"contact_share"`
	InFlight    int           `json:"max_in_flight"`
	Analyze     bool          `json:"analyze"`
	Drain       time.Duration `json:"-"`
	Series      bool          `json:"-"`
	Backlog     int           `json:"backlog"`
	MaxConns    int32         `json:"max_conns,omitempty"`
	Projections string        `json:"projections"`
	PoolSize    int32         `json:"pool_size"`
	CPUProfile  string        `json:"-"`
	JSON        bool          `json:"-"`

	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	PollMS    float64 `json:"poll_ms"`
}

// LagLatency is a lag sample's summary, with the p95 the append table does
// not show.
type LagLatency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func summariseLag(sample []time.Duration) LagLatency {
	l := summarise(sample) // sorts sample
	if l.Count == 0 {
		return LagLatency{}
	}
	return LagLatency{Count: l.Count, Mean: l.Mean, P50: l.P50, P90: l.P90, P95: ms(quantile(sample, 0.95)),
		P99: l.P99, P999: l.P999, Max: l.Max}
}

// ProjlagResult is one run's measurement.
type ProjlagResult struct {
	Elapsed          float64 `json:"elapsed_s"`
	Events           int     `json:"events"`
	Registered       int     `json:"patients_registered"`
	ContactsAdded    int     `json:"contacts_added"`
	EventsPerSec     float64 `json:"events_per_s"`
	Errors           int     `json:"errors"`
	FirstErr         string  `json:"first_error,omitempty"`
	Late             int     `json:"late_starts"` // commands started more than 10 ms after their slot
	Unseen           int     `json:"unseen"`      // never visible before the drain timeout
	VisibleBeforeAck int     `json:"visible_before_ack"`
	Polls            int     `json:"polls"`
	PollLatency      Latency `json:"poll_latency"`
	// Command is the time a command took (load + decide + append), caller's view.
	Command Latency `json:"command_latency"`
	// Lag is from the append's acknowledgement to the first checkpoint poll
	// that shows the event applied.
	Lag LagLatency `json:"lag"`
	// LagFromCall is the same, measured from when the command was started.
	LagFromCall LagLatency `json:"lag_from_call"`
	// MaxBehind is the most events seen committed but not yet applied at one poll.
	MaxBehind int64 `json:"max_events_behind"`
	// CPU is how busy the machine was while the commands ran, and who by.
	CPU CPUShare `json:"cpu"`
	// XactPerSec is the database's transactions per second meanwhile
	// (pg_stat_database, which lags by up to a second).
	XactPerSec float64 `json:"xact_per_s"`
	// Pool is how often the process's connection pool made callers wait.
	Pool PoolWaits `json:"pool"`
}

// PoolWaits sums up pgxpool's acquire statistics over the run.
type PoolWaits struct {
	AcquiresPerSec float64 `json:"acquires_per_s"`
	WaitedPct      float64 `json:"waited_pct"`   // acquires that found no idle connection
	WaitMeanMS     float64 `json:"wait_mean_ms"` // their mean wait
}

// CPUShare splits the machine's CPU time over an interval, in percent of
// all cores: this benchmark (its Go process and its database's backends),
// everything else (other work on the machine, Postgres background
// processes), and idle.
type CPUShare struct {
	Bench float64 `json:"bench_pct"`
	Other float64 `json:"other_pct"`
	Idle  float64 `json:"idle_pct"`
}

type cpuSample struct {
	busy, total float64 // seconds, all cores, from /proc/stat
	bench       float64 // this process and this database's backends
	backends    map[int]float64
	xacts       int64
	at          time.Time
	acquires    int64
	waited      int64
	waitTime    time.Duration
}

func sampleCPU(ctx context.Context, pool *pgxpool.Pool) (cpuSample, error) {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err == nil {
		fields := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		for i, f := range fields[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			v /= 100 // USER_HZ
			if i < 8 {
				s.total += v
				if i != 3 && i != 4 { // idle, iowait
					s.busy += v
				}
			}
		}
	}
	s.backends, err = backendCPU(ctx, pool)
	s.bench = goCPU()
	s.at = time.Now()
	st := pool.Stat()
	s.acquires, s.waited, s.waitTime = st.AcquireCount(), st.EmptyAcquireCount(), st.EmptyAcquireWaitTime()
	if err == nil {
		err = pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.xacts)
	}
	return s, err
}

func (s cpuSample) since(prev cpuSample) CPUShare {
	total := s.total - prev.total
	if total <= 0 {
		return CPUShare{}
	}
	bench := s.bench - prev.bench
	for pid, t := range s.backends {
		bench += t - prev.backends[pid]
	}
	busy := s.busy - prev.busy
	return CPUShare{Bench: 100 * bench / total, Other: 100 * max(busy-bench, 0) / total, Idle: 100 * (total - busy) / total}
}

// Catchup is the live path draining a backlog: engine started with the
// projection at 0 and the log at Events, until the checkpoint reaches the head.
type Catchup struct {
	Events       int     `json:"events"`
	Elapsed      float64 `json:"elapsed_s"`
	EventsPerSec float64 `json:"events_per_s"`
}

type projlagReport struct {
	Command     string         `json:"command"`
	Env         Env            `json:"env"`
	Config      projlagConfig  `json:"config"`
	Catchup     *Catchup       `json:"catchup,omitempty"`
	Result      *ProjlagResult `json:"result,omitempty"`
	Interrupted bool           `json:"interrupted,omitempty"`
}

func runProjlag(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("projlag", flag.ContinueOnError)
	var cfg projlagConfig
	fs.StringVar(&cfg.DatabaseURL, "database-url", defaultProjlagURL, "Postgres URL; the database is dropped and recreated, so its name must start with "+benchPrefix)
	fs.Float64Var(&cfg.Rate, "rate", 500, "events appended per second, open loop (one event per command)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "time at the same rate before the measured window, not recorded")
	fs.DurationVar(&cfg.Poll, "poll", 5*time.Millisecond, "pause between two reads of the projection's checkpoint (the lag's resolution; every poll is a query competing with the workload)")
	fs.Float64Var(&cfg.Contacts, "contacts", 0.5, "share of events that are PatientContactAdded (the rest are PatientRegistered)")
	fs.IntVar(&cfg.InFlight, "in-flight", 64, "most commands running at once; when all are busy the schedule slips (counted as late starts)")
	fs.BoolVar(&cfg.Analyze, "analyze", true, "ANALYZE the database after the warmup, as autovacuum would (the server runs with autovacuum off)")
	fs.DurationVar(&cfg.Drain, "drain", 60*time.Second, "how long to wait after the window for the projection to apply the last event")
	fs.IntVar(&cfg.Backlog, "backlog", 0, "first append this many patient events with the projection stopped, then start it and time its catch-up through the live path (the live path's capacity); -duration 0 stops there")
	fs.StringVar(&cfg.Projections, "projections", "all", "all: app.Open's engine, every read model and the mailer, as portald runs them; patients: an engine with the patients projection alone")
	var maxConns int
	fs.IntVar(&maxConns, "max-conns", 0, "run the store, commands and engine on a pool of this many connections instead of app.Open's (pgdb.DefaultMaxConns); for finding out whether the pool is the bottleneck (the URL must have a query string)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the measured window (and catch-up) to this file")
	fs.BoolVar(&cfg.Series, "series", false, "also print, per second of the run, events appended, events applied and the p99 lag of the events appended in it (on stderr)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("projlag: unexpected arguments %q", fs.Args())
	}
	if cfg.Projections != "all" && cfg.Projections != "patients" {
		return errors.New("-projections: want all or patients")
	}
	if cfg.Rate <= 0 || cfg.Duration < 0 || (cfg.Duration == 0 && cfg.Backlog == 0) || cfg.Backlog < 0 || cfg.Warmup < 0 || cfg.Poll < 0 || cfg.InFlight < 1 || cfg.Contacts < 0 || cfg.Contacts > 1 {
		return errors.New("-rate, -duration and -in-flight must be positive, -warmup and -poll not negative, -contacts within 0..1")
	}
	cfg.MaxConns = int32(maxConns)
	cfg.DurationS, cfg.WarmupS, cfg.PollMS = cfg.Duration.Seconds(), cfg.Warmup.Seconds(), float64(cfg.Poll)/float64(time.Millisecond)

	name, err := databaseName(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	logf("recreating database %s", name)
	if err := resetDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}

	// The real runtime: what portald --role all opens and runs, with the
	// patients projection, on the embedded Postgres store.
	appCfg := config.Defaults()
	appCfg.DatabaseURL = cfg.DatabaseURL
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.Open(ctx, appCfg, logger)
	if err != nil {
		return reachable(err, cfg.DatabaseURL)
	}
	defer a.Close()
	env, err := environment(ctx, a.Pool, name)
	if err != nil {
		return err
	}
	if cfg.MaxConns > 0 || cfg.Projections == "patients" {
		// The same wiring as app.Open, on a pool of another size or with
		// the patients projection alone.
		models := app.ReadModels()
		if cfg.Projections == "patients" {
			models = []projections.Projection{patients.Projection{}}
		}
		url := cfg.DatabaseURL
		if cfg.MaxConns > 0 {
			url += "&pool_max_conns=" + strconv.Itoa(int(cfg.MaxConns))
		}
		pool, err := pgdb.Open(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		store, err := pgstore.Open(ctx, pool, pgstore.Config{Logger: logger})
		if err != nil {
			return err
		}
		defer store.Close()
		engine, err := projections.New(projections.Config{Pool: pool, Store: store, Logger: logger, Registerer: prometheus.NewRegistry()}, models...)
		if err != nil {
			return err
		}
		a = &app.App{Config: a.Config, Pool: pool, Store: store, Engine: engine, Logger: logger}
	}
	cfg.PoolSize = a.Pool.Config().MaxConns
	logf("engine with %d projection(s), pool of %d connections", len(a.Engine.Projections()), cfg.PoolSize)

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var catchup *Catchup
	if cfg.Backlog > 0 {
		logf("appending a backlog of %d patient events with the projection stopped", cfg.Backlog)
		if _, err := seedPatients(ctx, a.Store, rebuildConfig{Events: cfg.Backlog, StreamEvents: 2, Writers: 8}); err != nil {
			return err
		}
		if cfg.Analyze {
			if _, err := a.Pool.Exec(ctx, `ANALYZE`); err != nil {
				return fmt.Errorf("analyze: %w", err)
			}
		}
		catchup = &Catchup{Events: cfg.Backlog}
	}

	runCtx, stopEngine := context.WithCancel(ctx)
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		_ = a.Engine.Run(runCtx)
	}()
	defer func() {
		stopEngine()
		<-engineDone
	}()
	engineStart := time.Now()
	if err := waitRunning(ctx, a); err != nil {
		return err
	}
	report := projlagReport{Command: "projlag", Env: env, Config: cfg, Catchup: catchup}
	if catchup != nil {
		var head int64
		if err := a.Pool.QueryRow(ctx, `SELECT position FROM eventstore.head`).Scan(&head); err != nil {
			return err
		}
		for {
			var pos int64
			if err := a.Pool.QueryRow(ctx, `SELECT position FROM projection.checkpoints WHERE name = 'patients' AND state = 'live'`).Scan(&pos); err != nil {
				return err
			}
			if pos >= head {
				break
			}
			if !sleep(ctx, 5*time.Millisecond) {
				return errInterrupted
			}
		}
		catchup.Elapsed = time.Since(engineStart).Seconds()
		catchup.EventsPerSec = float64(catchup.Events) / catchup.Elapsed
		logf("  caught up %d events in %.2fs: %.0f events/s", catchup.Events, catchup.Elapsed, catchup.EventsPerSec)
	}
	if cfg.Duration == 0 {
		if cfg.JSON {
			return printJSON(report)
		}
		report.print()
		return nil
	}

	res, err := measureProjlag(ctx, a, cfg)
	report.Result = &res
	if ctx.Err() != nil {
		report.Interrupted = true
	} else if err != nil {
		return err
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

// waitRunning waits until this process holds the patients projection's lease.
func waitRunning(ctx context.Context, a *app.App) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := a.Engine.Status(ctx)
		if err != nil {
			return err
		}
		running := len(st) > 0
		for _, s := range st {
			running = running && s.Running
		}
		if running {
			return nil
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return errInterrupted
		}
	}
	return errors.New("projlag: the projection runner did not take its lease within 30s")
}

// appendSample is one appended event: where it landed and when.
type appendSample struct {
	pos        eventstore.Position
	call, ack  time.Time
	measured   bool
	registered bool
}

// recordingStore is the real store, noting the position and acknowledgement
// time of every append the command handlers make.
type recordingStore struct {
	eventstore.Store
	mu      sync.Mutex
	samples []appendSample
	window  func(time.Time) bool
}

func (r *recordingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := r.Store.Append(ctx, stream, expected, events...)
	ack := time.Now()
	if err != nil {
		return res, err
	}
	call, _ := ctx.Value(callKey{}).(time.Time)
	r.mu.Lock()
	for i := range events {
		r.samples = append(r.samples, appendSample{
			pos: res.Position - eventstore.Position(len(events)-1-i), call: call, ack: ack,
			measured: r.window(call), registered: events[i].Type == "PatientRegistered",
		})
	}
	r.mu.Unlock()
	return res, err
}

type callKey struct{}

// observation is a checkpoint position and when a poll returned it.
type observation struct {
	at  time.Time
	pos eventstore.Position
}

func measureProjlag(ctx context.Context, a *app.App, cfg projlagConfig) (ProjlagResult, error) {
	var res ProjlagResult
	var windowStart, windowEnd time.Time // set before the measured window starts
	var windowMu sync.RWMutex
	rec := &recordingStore{Store: a.Store, window: func(t time.Time) bool {
		windowMu.RLock()
		defer windowMu.RUnlock()
		return !windowStart.IsZero() && !t.Before(windowStart) && t.Before(windowEnd)
	}}
	cmds := commands.New(rec, a.Pool)

	// The checkpoint poller: its own connection, so it never waits for the pool.
	conn, err := pgx.ConnectConfig(ctx, a.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())
	var obs []observation
	var pollTimes []time.Duration
	var maxBehind int64
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	pollDone := make(chan error, 1)
	var lastSeen eventstore.Position
	var lastMu sync.Mutex
	go func() {
		var last int64 = -1
		for pollCtx.Err() == nil {
			t0 := time.Now()
			var pos, head int64
			err := conn.QueryRow(pollCtx, `SELECT c.position, h.position FROM projection.checkpoints c, eventstore.head h
				WHERE c.name = 'patients' AND c.state = 'live'`).Scan(&pos, &head)
			at := time.Now()
			if err != nil {
				if pollCtx.Err() != nil {
					break
				}
				pollDone <- fmt.Errorf("poll checkpoint: %w", err)
				return
			}
			pollTimes = append(pollTimes, at.Sub(t0))
			if pos > last {
				obs = append(obs, observation{at: at, pos: eventstore.Position(pos)})
				last = pos
				lastMu.Lock()
				lastSeen = eventstore.Position(pos)
				lastMu.Unlock()
			}
			maxBehind = max(maxBehind, head-pos)
			if cfg.Poll > 0 {
				time.Sleep(cfg.Poll)
			}
		}
		pollDone <- nil
	}()

	// The writers: an open-loop schedule of commands at the rate asked.
	clinic := uuid.New()
	meta := func() commands.Meta {
		return commands.Meta{Actor: commands.Actor{ID: "staff-bench", Kind: "staff", Role: "admin", ClinicID: clinic}, CommandID: uuid.NewString()}
	}
	var (
		mu       sync.Mutex
		idle     []uuid.UUID // registered patients nobody is adding a contact to
		errs     int
		firstErr error
		late     int
		cmdTimes []time.Duration
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs++
		if firstErr == nil {
			firstErr = err
		}
	}
	sem := make(chan struct{}, cfg.InFlight)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now().Add(10 * time.Millisecond)
	windowMu.Lock()
	windowStart = start.Add(cfg.Warmup)
	windowEnd = windowStart.Add(cfg.Duration)
	windowMu.Unlock()
	analyzed := !cfg.Analyze || cfg.Warmup == 0
	logf("%.0f events/s: %s warmup, then %s measured", cfg.Rate, cfg.Warmup, cfg.Duration)
	cpu0, err := sampleCPU(ctx, a.Pool)
	if err != nil {
		return res, err
	}
	for i := 0; ctx.Err() == nil; i++ {
		slot := start.Add(time.Duration(i) * interval)
		if !slot.Before(windowEnd) {
			break
		}
		if !analyzed && !slot.Before(windowStart.Add(-cfg.Warmup/2)) {
			// Statistics for the planner, as autovacuum would gather them,
			// halfway through the warmup.
			if _, err := a.Pool.Exec(ctx, `ANALYZE`); err != nil {
				return res, fmt.Errorf("analyze: %w", err)
			}
			analyzed = true
		}
		if d := time.Until(slot); d > 0 {
			time.Sleep(d)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		call := time.Now()
		if call.Sub(slot) > 10*time.Millisecond && !call.Before(windowStart) {
			late++
		}
		var patientID uuid.UUID
		mu.Lock()
		contact := len(idle) > 0 && rand.Float64() < cfg.Contacts
		if contact {
			j := rand.IntN(len(idle))
			patientID = idle[j]
			idle[j] = idle[len(idle)-1]
			idle = idle[:len(idle)-1]
		}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx := context.WithValue(ctx, callKey{}, call)
			var err error
			if contact {
				_, err = cmds.AddPatientContact(cctx, meta(), commands.AddPatientContact{
					PatientID: patientID, Name: "Bench Contact " + strconv.Itoa(i), Relationship: "parent",
					Email: "contact" + strconv.Itoa(i) + "@example.org"})
			} else {
				patientID, err = cmds.RegisterPatient(cctx, meta(), commands.RegisterPatient{
					FirstName: "Bench", LastName: "Patient" + strconv.Itoa(i), DateOfBirth: "2015-06-01",
					Email: "patient" + strconv.Itoa(i) + "@example.org"})
			}
			took := time.Since(call)
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				return
			}
			mu.Lock()
			if !call.Before(windowStart) && call.Before(windowEnd) {
				cmdTimes = append(cmdTimes, took)
			}
			idle = append(idle, patientID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	cpu1, err := sampleCPU(ctx, a.Pool)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1.since(cpu0)
	if dt := cpu1.at.Sub(cpu0.at).Seconds(); dt > 0 {
		res.XactPerSec = float64(cpu1.xacts-cpu0.xacts) / dt
		res.Pool = PoolWaits{
			AcquiresPerSec: float64(cpu1.acquires-cpu0.acquires) / dt,
			WaitedPct:      100 * float64(cpu1.waited-cpu0.waited) / max(float64(cpu1.acquires-cpu0.acquires), 1),
			WaitMeanMS:     ms(cpu1.waitTime-cpu0.waitTime) / max(float64(cpu1.waited-cpu0.waited), 1),
		}
	}

	// Wait until the projection has applied the last event appended.
	rec.mu.Lock()
	var lastPos eventstore.Position
	for _, s := range rec.samples {
		lastPos = max(lastPos, s.pos)
	}
	rec.mu.Unlock()
	drainUntil := time.Now().Add(cfg.Drain)
	for ctx.Err() == nil && time.Now().Before(drainUntil) {
		lastMu.Lock()
		seen := lastSeen
		lastMu.Unlock()
		if seen >= lastPos {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopPoll()
	if err := <-pollDone; err != nil {
		return res, err
	}

	res.Elapsed = windowEnd.Sub(windowStart).Seconds()
	res.Errors, res.Late, res.Polls = errs, late, len(pollTimes)
	if firstErr != nil {
		res.FirstErr = firstErr.Error()
	}
	res.PollLatency = summarise(pollTimes)
	res.Command = summarise(cmdTimes)
	res.MaxBehind = maxBehind

	var lags, fromCall []time.Duration
	for _, s := range rec.samples {
		if !s.measured {
			continue
		}
		res.Events++
		if s.registered {
			res.Registered++
		} else {
			res.ContactsAdded++
		}
		i, _ := slices.BinarySearchFunc(obs, s.pos, func(o observation, p eventstore.Position) int {
			switch {
			case o.pos < p:
				return -1
			case o.pos > p:
				return 1
			}
			return 0
		})
		if i == len(obs) {
			res.Unseen++
			continue
		}
		lag := obs[i].at.Sub(s.ack)
		if lag < 0 {
			// Applied and polled before the appender got its answer back.
			res.VisibleBeforeAck++
			lag = 0
		}
		lags = append(lags, lag)
		fromCall = append(fromCall, obs[i].at.Sub(s.call))
	}
	res.EventsPerSec = float64(res.Events) / res.Elapsed
	if cfg.Series {
		printSeries(start, rec.samples, obs)
	}
	res.Lag = summariseLag(lags)
	res.LagFromCall = summariseLag(fromCall)
	return res, ctx.Err()
}

func (r projlagReport) print() {
	r.Env.print()
	if cu := r.Catchup; cu != nil {
		fmt.Printf("catch-up    %d events (half PatientRegistered, half PatientContactAdded) appended with the projection stopped,\n", cu.Events)
		fmt.Printf("            applied through the live path in %.2fs from engine start: %s events/s\n", cu.Elapsed, f0(cu.EventsPerSec))
	}
	if r.Result == nil {
		return
	}
	c, x := r.Config, *r.Result
	fmt.Printf("workload    RegisterPatient / AddPatientContact commands (%.0f%% contacts) at %.0f events/s open loop, %s warmup + %s measured;\n",
		c.Contacts*100, c.Rate, c.Warmup, c.Duration)
	engine := "app.Open's engine (every read model and the mailer)"
	if c.Projections == "patients" {
		engine = "an engine with the patients projection alone"
	}
	fmt.Printf("            %s running in the same process; checkpoint of patients polled every %s on its own connection\n", engine, c.Poll)
	fmt.Printf("lag         append acknowledged -> first poll showing projection.checkpoints.position >= the event's position\n\n")
	table([][]string{
		{"events", "events/s", "errors", "late", "unseen", "cmd p50 ms", "cmd p99 ms",
			"lag p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "max behind"},
		{strconv.Itoa(x.Events), f1(x.EventsPerSec), strconv.Itoa(x.Errors), strconv.Itoa(x.Late), strconv.Itoa(x.Unseen),
			f2(x.Command.P50), f2(x.Command.P99),
			f2(x.Lag.P50), f2(x.Lag.P90), f2(x.Lag.P95), f2(x.Lag.P99), f2(x.Lag.P999), f2(x.Lag.Max), strconv.FormatInt(x.MaxBehind, 10)},
	})
	fmt.Printf("\nfrom call   lag p50 %s ms, p95 %s ms, p99 %s ms, max %s ms (command started -> visible)\n",
		f2(x.LagFromCall.P50), f2(x.LagFromCall.P95), f2(x.LagFromCall.P99), f2(x.LagFromCall.Max))
	fmt.Printf("polls       %d, p50 %s ms each; %d events visible before their append was acknowledged (lag 0)\n",
		x.Polls, f2(x.PollLatency.P50), x.VisibleBeforeAck)
	fmt.Printf("mix         %d registered, %d contacts added\n", x.Registered, x.ContactsAdded)
	fmt.Printf("cpu         of both cores while appending: this benchmark %.0f%% (Go + its Postgres backends), other work %.0f%%, idle %.0f%%; %.0f transactions/s in the database\n",
		x.CPU.Bench, x.CPU.Other, x.CPU.Idle, x.XactPerSec)
	fmt.Printf("pool        %d connections: %.0f acquires/s, %.0f%% of them waited for a connection, %.2f ms on average\n",
		c.PoolSize, x.Pool.AcquiresPerSec, x.Pool.WaitedPct, x.Pool.WaitMeanMS)
	if x.FirstErr != "" {
		fmt.Printf("first error %s\n", x.FirstErr)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// printSeries shows the run second by second: how many events were
// appended and applied in it, and the lag of those appended in it.
func printSeries(start time.Time, samples []appendSample, obs []observation) {
	type second struct {
		appended, applied int
		lags              []time.Duration
	}
	var secs []second
	at := func(t time.Time) *second {
		i := max(int(t.Sub(start)/time.Second), 0)
		for len(secs) <= i {
			secs = append(secs, second{})
		}
		return &secs[i]
	}
	samples = slices.Clone(samples)
	slices.SortFunc(samples, func(a, b appendSample) int { return int(a.pos) - int(b.pos) })
	oi := 0
	for _, s := range samples {
		at(s.ack).appended++
		for oi < len(obs) && obs[oi].pos < s.pos {
			oi++
		}
		if oi < len(obs) {
			at(s.ack).lags = append(at(s.ack).lags, max(obs[oi].at.Sub(s.ack), 0))
		}
	}
	var prev eventstore.Position
	for _, o := range obs {
		at(o.at).applied += int(o.pos - prev)
		prev = o.pos
	}
	fmt.Fprintln(os.Stderr, "second  appended  applied  lag p50 ms  lag p99 ms  lag max ms")
	for i, s := range secs {
		l := summarise(s.lags)
		fmt.Fprintf(os.Stderr, "%6d  %8d  %7d  %10s  %10s  %10s\n", i, s.appended, s.applied, f1(l.P50), f1(l.P99), f1(l.Max))
	}
}
