package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/projections"
)

const defaultRebuildURL = "postgres://postgres@127.0.0.1:5432/portico_bench_rebuild?sslmode=disable"

type rebuildConfig struct {
	DatabaseURL  string `json:"-"`
	Events       int    `json:"events"`
	StreamEvents int    `json:"events_per_stream"`
	Writers      int    `json:"seed_writers"`
	Seed         bool   `json:"seed"`
	Vacuum       bool   `json:"vacuum"`
	ReadPass     bool   `json:"read_pass"`
	Rebuilds     int    `json:"rebuilds"`
	Batch        int    `json:"rebuild_batch"`
	CPUProfile   string `json:"-"`
	JSON         bool   `json:"-"`
}

// SeedResult is how the log was written.
type SeedResult struct {
	Events       int     `json:"events"`
	Streams      int     `json:"streams"`
	Elapsed      float64 `json:"elapsed_s"`
	EventsPerSec float64 `json:"events_per_s"`
	DataMiB      float64 `json:"data_mib"`
}

// RebuildRun is one full rebuild of the patients projection.
type RebuildRun struct {
	Run          int     `json:"run"`
	Generation   int     `json:"generation"`
	Events       int64   `json:"events"`
	Took         float64 `json:"took_s"`  // Rebuild's own measure: start to views switched
	Total        float64 `json:"total_s"` // the call, including dropping the old generation
	EventsPerSec float64 `json:"events_per_s"`
	Batches      int     `json:"batches"`
	Batch        Latency `json:"batch_latency"` // read + apply + commit of one batch
	GoCPU        float64 `json:"go_cpu_s"`
	PostgresCPU  float64 `json:"postgres_cpu_s"` // this database's backends
	Patients     int64   `json:"patients"`
	Contacts     int64   `json:"contacts"`
}

type rebuildReport struct {
	Command     string        `json:"command"`
	Env         Env           `json:"env"`
	Config      rebuildConfig `json:"config"`
	Seed        *SeedResult   `json:"seed,omitempty"`
	Log         int64         `json:"patient_events"`
	Read        *ReadPass     `json:"read_pass,omitempty"`
	Runs        []RebuildRun  `json:"runs"`
	Interrupted bool          `json:"interrupted,omitempty"`
}

func runRebuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	var cfg rebuildConfig
	fs.StringVar(&cfg.DatabaseURL, "database-url", defaultRebuildURL, "Postgres URL; with -seed the database is dropped and recreated, so its name must start with "+benchPrefix)
	fs.IntVar(&cfg.Events, "events", 1_000_000, "patient events to seed")
	fs.IntVar(&cfg.StreamEvents, "stream-events", 10, "events per patient stream: one PatientRegistered, then PatientContactAdded; appended in one append per stream")
	fs.IntVar(&cfg.Writers, "writers", 16, "concurrent appenders while seeding (their appends group-commit together)")
	fs.BoolVar(&cfg.Seed, "seed", true, "recreate the database and seed the log; -seed=false rebuilds over the log a previous run left")
	fs.BoolVar(&cfg.Vacuum, "vacuum", true, "VACUUM ANALYZE the event tables and CHECKPOINT after seeding, as autovacuum and time would (the server runs with autovacuum off)")
	fs.BoolVar(&cfg.ReadPass, "read-pass", true, "first read the patient events once through ReadAll in rebuild-sized pages, without applying them: the read side's share")
	fs.IntVar(&cfg.Rebuilds, "rebuilds", 2, "full rebuilds to time, one after the other, each into a new generation")
	fs.IntVar(&cfg.Batch, "batch", 0, "events per rebuild transaction (projections.Config.RebuildBatch); 0 keeps the engine's default, as portalctl runs it")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the first rebuild to this file (go tool pprof)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("rebuild: unexpected arguments %q", fs.Args())
	}
	if cfg.Events < 1 || cfg.StreamEvents < 1 || cfg.Writers < 1 || cfg.Rebuilds < 1 || cfg.Batch < 0 {
		return errors.New("-events, -stream-events, -writers and -rebuilds must be positive, -batch not negative")
	}
	name, err := databaseName(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if cfg.Seed {
		logf("recreating database %s", name)
		if err := resetDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
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
	report := rebuildReport{Command: "rebuild", Env: env, Config: cfg}

	if cfg.Seed {
		logf("seeding %d patient events, %d per stream, %d writers", cfg.Events, cfg.StreamEvents, cfg.Writers)
		seed, err := seedPatients(ctx, a.Store, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return err
		}
		report.Seed = &seed
		logf("  seeded %d events in %.1fs (%.0f events/s)", seed.Events, seed.Elapsed, seed.EventsPerSec)
	}
	if cfg.Vacuum {
		logf("VACUUM ANALYZE and CHECKPOINT")
		for _, stmt := range []string{`VACUUM (ANALYZE) eventstore.events, eventstore.streams`, `CHECKPOINT`} {
			if _, err := a.Pool.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
	}
	if err := a.Pool.QueryRow(ctx, `SELECT count(*) FROM eventstore.events WHERE category = $1`, patient.Category).Scan(&report.Log); err != nil {
		return err
	}
	if report.Log == 0 {
		return fmt.Errorf("no patient events in %s: run with -seed", name)
	}

	// The engine portalctl uses (app.Open's), or the same with another batch size.
	engine := a.Engine
	batch := cfg.Batch
	if batch > 0 {
		engine, err = projections.New(projections.Config{Pool: a.Pool, Store: a.Store, Logger: logger,
			Registerer: prometheus.NewRegistry(), RebuildBatch: batch}, app.ReadModels()...)
		if err != nil {
			return err
		}
	} else {
		batch = 2000 // the engine's default
	}

	if cfg.ReadPass {
		logf("read pass: ReadAll of the patient category in pages of %d", batch)
		pass, err := readPassFiltered(ctx, a.Store, batch, eventstore.Filter{Categories: []string{patient.Category}})
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return err
		}
		report.Read = &pass
		logf("  %.0f events/s", pass.EventsPerSec)
	}

	for i := 1; i <= cfg.Rebuilds; i++ {
		logf("rebuild %d of %d: %d events", i, cfg.Rebuilds, report.Log)
		profile := ""
		if i == 1 {
			profile = cfg.CPUProfile
		}
		run, err := timeRebuild(ctx, engine, a.Pool, profile)
		if ctx.Err() != nil {
			report.Interrupted = true
			break
		}
		if err != nil {
			return err
		}
		run.Run = i
		report.Runs = append(report.Runs, run)
		logf("  %d events in %.2fs: %.0f events/s (Go CPU %.1fs, Postgres CPU %.1fs)", run.Events, run.Took, run.EventsPerSec, run.GoCPU, run.PostgresCPU)
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

var (
	firstNames = []string{"Ada", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya"}
	lastNames  = []string{"Andersen", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ivanova", "Jensen", "Kim", "Larsen", "Moreau", "Nakamura", "O'Brien", "Patel"}
	relations  = []string{"parent", "guardian", "grandparent", "sibling", "caregiver"}
)

// seedPatients appends cfg.Events patient events through the store port:
// each stream a patient, registered then given contacts, in one append.
// Writers run concurrently, so the store's group commit writes many streams
// per transaction.
func seedPatients(ctx context.Context, store eventstore.Store, cfg rebuildConfig) (SeedResult, error) {
	clinics := make([]uuid.UUID, 20)
	for i := range clinics {
		clinics[i] = uuid.New()
	}
	streams := (cfg.Events + cfg.StreamEvents - 1) / cfg.StreamEvents
	var next, written, bytes atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				n := written.Load()
				logf("  … %d events (%.0f events/s)", n, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	var wg sync.WaitGroup
	for range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s := int(next.Add(1)) - 1
				if s >= streams {
					return
				}
				n := min(cfg.StreamEvents, cfg.Events-s*cfg.StreamEvents)
				stream, events := patientStream(s, n, clinics[s%len(clinics)])
				if _, err := store.Append(ctx, stream, eventstore.NoStream(), events...); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				var b int
				for _, e := range events {
					b += len(e.Data)
				}
				written.Add(int64(n))
				bytes.Add(int64(b))
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	elapsed := time.Since(start)
	if firstErr != nil {
		return SeedResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return SeedResult{}, err
	}
	return SeedResult{
		Events: int(written.Load()), Streams: streams, Elapsed: elapsed.Seconds(),
		EventsPerSec: float64(written.Load()) / elapsed.Seconds(), DataMiB: float64(bytes.Load()) / (1 << 20),
	}, nil
}

// patientStream is the s-th patient's stream: PatientRegistered and n-1
// PatientContactAdded, with the metadata a staff command gives its events.
func patientStream(s, n int, clinic uuid.UUID) (string, []eventstore.EventData) {
	id := uuid.New()
	stream := eventstore.StreamName(patient.Category, id.String())
	commandID := uuid.NewString()
	md := eventstore.Metadata{
		ClinicID: clinic.String(), ActorID: "staff-seed", ActorKind: "staff", ActorRole: "admin",
		CorrelationID: commandID, CommandID: commandID,
	}
	first, last := firstNames[s%len(firstNames)], lastNames[(s/len(firstNames))%len(lastNames)]
	events := make([]eventstore.EventData, 0, n)
	add := func(e interface{ EventType() string }) {
		data, _ := json.Marshal(e) // plain structs
		events = append(events, eventstore.EventData{
			ID: eventstore.DeterministicID(commandID+"/"+stream, len(events)), Type: e.EventType(), SchemaVersion: 1,
			Data: data, Metadata: md,
		})
	}
	add(patient.Registered{
		PatientID: id, ClinicID: clinic, FirstName: first, LastName: last,
		DateOfBirth: fmt.Sprintf("%04d-%02d-%02d", 1940+s%80, 1+s%12, 1+s%28),
		Email:       strings.ToLower(first) + "." + strconv.Itoa(s) + "@example.org",
	})
	for c := 1; c < n; c++ {
		add(patient.ContactAdded{
			PatientID: id, ContactID: uuid.New(), Name: firstNames[(s+c)%len(firstNames)] + " " + last,
			Relationship: relations[c%len(relations)], Email: "contact" + strconv.Itoa(c) + "." + strconv.Itoa(s) + "@example.org",
		})
	}
	return stream, events
}

// readPassFiltered reads the log once as a rebuild does, without applying.
func readPassFiltered(ctx context.Context, store eventstore.Store, page int, filter eventstore.Filter) (ReadPass, error) {
	var r ReadPass
	var pageTimes []time.Duration
	var bytes int
	after := eventstore.Start
	start := time.Now()
	for {
		t0 := time.Now()
		events, err := store.ReadAll(ctx, after, page, filter)
		if err != nil {
			return r, err
		}
		pageTimes = append(pageTimes, time.Since(t0))
		r.Pages++
		r.Events += len(events)
		for _, e := range events {
			bytes += len(e.Data)
		}
		if len(events) < page {
			break
		}
		after = events[len(events)-1].Position
	}
	elapsed := time.Since(start)
	r.Pass = 1
	r.Elapsed = elapsed.Seconds()
	r.EventsPerSec = float64(r.Events) / elapsed.Seconds()
	r.DataMiB = float64(bytes) / (1 << 20)
	r.PageLatency = summarise(pageTimes)
	return r, nil
}

// timeRebuild runs the real rebuild path (Engine.Rebuild, as `portalctl
// projections rebuild patients` does) and times it.
func timeRebuild(ctx context.Context, engine *projections.Engine, pool *pgxpool.Pool, profile string) (RebuildRun, error) {
	var run RebuildRun
	pgBefore, err := backendCPU(ctx, pool)
	if err != nil {
		return run, err
	}
	goBefore := goCPU()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return run, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return run, err
		}
	}
	var batches []time.Duration
	start := time.Now()
	last := start
	res, err := engine.Rebuild(ctx, "patients", func(uint64, int64) {
		now := time.Now()
		batches = append(batches, now.Sub(last))
		last = now
	})
	total := time.Since(start)
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return run, err
	}
	goAfter := goCPU()
	pgAfter, err := backendCPU(ctx, pool)
	if err != nil {
		return run, err
	}
	run.Generation, run.Events = res.Generation, res.Events
	run.Took, run.Total = res.Took.Seconds(), total.Seconds()
	run.EventsPerSec = float64(res.Events) / res.Took.Seconds()
	run.Batches = len(batches)
	run.Batch = summarise(batches)
	run.GoCPU = goAfter - goBefore
	for pid, t := range pgAfter {
		run.PostgresCPU += t - pgBefore[pid]
	}
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rm.patients), (SELECT count(*) FROM rm.patient_contacts)`).Scan(&run.Patients, &run.Contacts); err != nil {
		return run, err
	}
	return run, nil
}

// goCPU is this process's user + system CPU time, in seconds.
func goCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// backendCPU is the CPU time, in seconds, of every Postgres backend serving
// this database, read from /proc (Postgres on the same machine; empty
// elsewhere). Clock ticks are taken to be 100 per second, Linux's USER_HZ.
func backendCPU(ctx context.Context, pool *pgxpool.Pool) (map[int]float64, error) {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]float64{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		out[pid] = (utime + stime) / 100
	}
	return out, rows.Err()
}

func (r rebuildReport) print() {
	r.Env.print()
	c := r.Config
	if s := r.Seed; s != nil {
		fmt.Printf("seed        %d patient events in %d streams (%d per stream, one append each, %d writers): %.1fs, %s events/s, %.0f MiB data\n",
			s.Events, s.Streams, c.StreamEvents, c.Writers, s.Elapsed, f0(s.EventsPerSec), s.DataMiB)
	}
	batch := c.Batch
	if batch == 0 {
		batch = 2000
	}
	fmt.Printf("workload    Engine.Rebuild(\"patients\") over %d patient events, batches of %d (as portalctl projections rebuild)\n", r.Log, batch)
	if p := r.Read; p != nil {
		fmt.Printf("read only   ReadAll of the same events in pages of %d, nothing applied: %.2fs, %s events/s (page p50 %s ms)\n",
			batch, p.Elapsed, f0(p.EventsPerSec), f2(p.PageLatency.P50))
	}
	fmt.Println()
	rows := [][]string{{"run", "gen", "events", "seconds", "events/s", "batches", "batch p50 ms", "batch p99 ms", "Go CPU s", "PG CPU s", "patients", "contacts"}}
	for _, x := range r.Runs {
		rows = append(rows, []string{
			strconv.Itoa(x.Run), strconv.Itoa(x.Generation), strconv.FormatInt(x.Events, 10), f2(x.Took), f0(x.EventsPerSec),
			strconv.Itoa(x.Batches), f2(x.Batch.P50), f2(x.Batch.P99), f1(x.GoCPU), f1(x.PostgresCPU),
			strconv.FormatInt(x.Patients, 10), strconv.FormatInt(x.Contacts, 10),
		})
	}
	table(rows)
}
