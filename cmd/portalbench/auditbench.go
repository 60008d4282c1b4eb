package main

// portalbench audit: what recording every PHI access costs a read.
//
// One process holds the whole Portico (app.Open, projections and mailer
// running, the real event store) and the load generator. The same API is
// served twice over real HTTP listeners on 127.0.0.1: once with the
// process's recorder (a.Audit, as portald serves it) and once with
// phiaudit.Nop{}, the benchmark-only switch that records nothing. No
// configuration of portald reaches Nop; only this program builds that
// handler.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/linktoken"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/readapi"
)

const defaultAuditURL = "postgres://postgres@127.0.0.1:5432/portico_bench_audit?sslmode=disable"

const (
	modeAudited   = "audited"
	modeUnaudited = "unaudited"
)

type auditConfig struct {
	DatabaseURL  string        `json:"-"`
	Clients      []int         `json:"clients"`
	Modes        []string      `json:"modes"`
	Runs         int           `json:"runs"`
	Duration     time.Duration `json:"-"`
	Warmup       time.Duration `json:"-"`
	Appointments int           `json:"appointments"`
	Analyze      bool          `json:"analyze"`
	Projections  bool          `json:"projections"`
	Drain        time.Duration `json:"-"`
	CPUProfile   string        `json:"-"`
	MemProfile   string        `json:"-"`
	JSON         bool          `json:"-"`

	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
}

// AuditLatency is a latency sample's summary, with the p95 the issue asks
// beside p50 and p99.
type AuditLatency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func summariseAudit(sample []time.Duration) AuditLatency {
	l := summarise(sample) // sorts sample
	if l.Count == 0 {
		return AuditLatency{}
	}
	return AuditLatency{Count: l.Count, Mean: l.Mean, P50: l.P50, P95: ms(quantile(sample, 0.95)), P99: l.P99, P999: l.P999, Max: l.Max}
}

// AuditResult is one window: one mode at one client count in one run.
type AuditResult struct {
	Run      int     `json:"run"`
	Mode     string  `json:"mode"`
	Clients  int     `json:"clients"`
	Elapsed  float64 `json:"elapsed_s"`
	Requests int     `json:"requests"` // answered 200 with every appointment
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	// RequestsPerSec counts verified answers only.
	RequestsPerSec float64      `json:"requests_per_s"`
	Latency        AuditLatency `json:"latency"`
	// Records are the access records appended to this process's chain in
	// the window; Appends the transactions that wrote them (distinct xmin),
	// so RecordsPerAppend is the mean group-commit size of the recorder.
	Records          int     `json:"audit_records"`
	Appends          int     `json:"audit_appends"`
	RecordsPerAppend float64 `json:"records_per_append"`
	// GoCPU is this process's CPU time (server and load generator) per
	// verified request; HostCPU the whole machine's busy time per request
	// (Postgres included, and whatever else runs).
	GoCPU   float64 `json:"go_cpu_ms_per_request"`
	HostCPU float64 `json:"host_cpu_ms_per_request"`
	// Backlog is how many events the projections had still to apply when
	// the window ended; Drain how long they then took to catch up (waited
	// out before the next window, so it does not bill the next mode).
	Backlog int64   `json:"projection_backlog_events"`
	Drain   float64 `json:"projection_drain_s"`
	// AuditWait is how long requests waited in Record for their access
	// record to be durable (audited mode only).
	AuditWait *AuditLatency `json:"audit_wait,omitempty"`
}

// timedAuditor times each Record of the auditor it wraps, while on.
type timedAuditor struct {
	phiaudit.Auditor
	mu    sync.Mutex
	on    bool
	waits []time.Duration
}

func (t *timedAuditor) Record(ctx context.Context, a audit.Access) (audit.Access, error) {
	t0 := time.Now()
	out, err := t.Auditor.Record(ctx, a)
	d := time.Since(t0)
	t.mu.Lock()
	if t.on && err == nil {
		t.waits = append(t.waits, d)
	}
	t.mu.Unlock()
	return out, err
}

// reset turns timing on or off and returns what was timed since the last.
func (t *timedAuditor) reset(on bool) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waits
	t.waits, t.on = nil, on
	return w
}

type auditReport struct {
	Command     string        `json:"command"`
	Env         Env           `json:"env"`
	Config      auditConfig   `json:"config"`
	Pool        int32         `json:"pool_max_conns"`
	Results     []AuditResult `json:"results"`
	Interrupted bool          `json:"interrupted,omitempty"`
}

func runAudit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	var cfg auditConfig
	var clients, modes string
	fs.StringVar(&cfg.DatabaseURL, "database-url", defaultAuditURL, "Postgres URL; the database is dropped and recreated, so its name must start with "+benchPrefix)
	fs.StringVar(&clients, "clients", "1,16,64", "comma list of concurrent closed-loop clients, measured one after the other")
	fs.StringVar(&modes, "modes", "audited,unaudited", "which handlers to measure: audited (the process's recorder, as portald) and/or unaudited (phiaudit.Nop, benchmark only)")
	fs.IntVar(&cfg.Runs, "runs", 1, "repeat the whole matrix this many times on the same database (modes alternate which goes first); the table shows the median and range")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per mode and client count")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each measured window, at the same load")
	fs.IntVar(&cfg.Appointments, "appointments", 10, "upcoming appointments of the benchmark patient (each response lists them all)")
	fs.BoolVar(&cfg.Analyze, "analyze", true, "ANALYZE the database after each warmup, as autovacuum would (this server may run with autovacuum off)")
	fs.BoolVar(&cfg.Projections, "projections", true, "keep the projections (and mailer) running during the windows, as portald --role all does; false stops them once the fixture is projected, to tell their share of the cost")
	fs.DurationVar(&cfg.Drain, "drain", 60*time.Second, "after each window, wait at most this long for the projections to catch up before the next")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the measurement loop (warmups and windows) to this file")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "write a Go allocation profile of the measurement loop to this file (go tool pprof -sample_index=alloc_space)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit: unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Clients, err = parseInts(clients); err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	for _, m := range strings.Split(modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case modeAudited, modeUnaudited:
			if !slices.Contains(cfg.Modes, m) {
				cfg.Modes = append(cfg.Modes, m)
			}
		case "":
		default:
			return fmt.Errorf("-modes: %q is neither %s nor %s", m, modeAudited, modeUnaudited)
		}
	}
	if len(cfg.Modes) == 0 {
		return errors.New("-modes: empty list")
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Runs < 1 || cfg.Appointments < 1 || cfg.Drain < 0 {
		return errors.New("-duration, -runs and -appointments must be positive; -warmup and -drain not negative")
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
	appCfg := config.Defaults()
	appCfg.DatabaseURL = cfg.DatabaseURL
	appCfg.InstanceName = "portalbench-audit"
	// Warnings only: portald's info level would add an access-log line per
	// request to both modes alike.
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

	// Both handlers are built before either serves: readapi.New fills
	// package-level route tables.
	deps := readapi.Deps{Logger: logger, Pool: a.Pool, Store: a.Store, Commands: a.Commands, Engine: a.Engine, Clock: a.Clock}
	audited, unaudited := deps, deps
	timed := &timedAuditor{Auditor: a.Audit}
	audited.Audit = timed            // a.Audit, its wait timed
	unaudited.Audit = phiaudit.Nop{} // the benchmark-only switch
	urls := map[string]string{}
	for mode, d := range map[string]readapi.Deps{modeAudited: audited, modeUnaudited: unaudited} {
		u, stop, err := auditServe(readapi.New(d))
		if err != nil {
			return err
		}
		defer stop()
		urls[mode] = u
	}

	maxClients := slices.Max(cfg.Clients)
	httpc := &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        4 * maxClients,
			MaxIdleConnsPerHost: 2 * maxClients, // keep-alive for every client: no reconnects in the window
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
	defer httpc.CloseIdleConnections()

	logf("seeding a clinic, a patient with %d upcoming appointments and a signed-in portal parent", cfg.Appointments)
	fx, err := auditSeed(ctx, a, urls[modeAudited], httpc, cfg.Appointments)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	if err := auditDrain(ctx, a, cfg.Drain); err != nil {
		return err
	}
	if !cfg.Projections {
		logf("stopping the projections for the measurement")
		stopEngine()
		<-engineDone
	}

	report := auditReport{Command: "audit", Env: env, Config: cfg, Pool: a.Pool.Config().MaxConns}
	var chains []string
	for _, id := range a.Audit.Chains() {
		chains = append(chains, eventstore.StreamName(audit.Category, id.String()))
	}
	w := auditWindow{a: a, httpc: httpc, fx: fx, cfg: cfg, chains: chains, timed: timed}
	if cfg.CPUProfile != "" {
		// Covers the loop below: warmups and measured windows alike (both
		// at the same load), and any projection catch-up between them.
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
	if cfg.MemProfile != "" {
		// Sampled from here on, so the profile is mostly the loop.
		runtime.MemProfileRate = 64 << 10
		runtime.GC()
		defer func() {
			f, err := os.Create(cfg.MemProfile)
			if err != nil {
				logf("memprofile: %v", err)
				return
			}
			defer f.Close()
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
		}()
	}
run:
	for run := 1; run <= cfg.Runs; run++ {
		for _, n := range cfg.Clients {
			order := slices.Clone(cfg.Modes)
			if run%2 == 0 {
				slices.Reverse(order)
			}
			for _, mode := range order {
				logf("run %d, %s, %d client(s): %s warmup, %s measured", run, mode, n, cfg.Warmup, cfg.Duration)
				res, err := w.measure(ctx, urls[mode], mode, n)
				if ctx.Err() != nil {
					report.Interrupted = true
					break run
				}
				if err != nil {
					return err
				}
				res.Run = run
				report.Results = append(report.Results, res)
				logf("  %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors, %d records in %d appends, backlog %d drained in %.1fs",
					res.RequestsPerSec, res.Latency.P50, res.Latency.P99, res.Errors, res.Records, res.Appends, res.Backlog, res.Drain)
				if res.AuditWait != nil {
					logf("  waiting for the record: p50 %.2f ms, p99 %.2f ms", res.AuditWait.P50, res.AuditWait.P99)
				}
			}
		}
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

// auditServe serves h over HTTP on a free port of 127.0.0.1, as portald
// serves the API.
func auditServe(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// auditFixture is what the clients read and how a response is checked.
type auditFixture struct {
	patientID uuid.UUID
	token     string
	path      string
	apptIDs   []uuid.UUID
	// want are the appointment ids as they appear in a response body.
	want [][]byte
}

// auditSeed makes one clinic, one patient with n upcoming appointments and
// a parent with portal access to them, signed in over the API. The
// invitation's link is made here from the keys the mailer would use,
// instead of being fished out of an email.
func auditSeed(ctx context.Context, a *app.App, baseURL string, httpc *http.Client, n int) (auditFixture, error) {
	const staffPassword, parentPassword = "benchmark staff passphrase", "benchmark parent passphrase"
	const parentEmail = "parent@bench.example"
	boot, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "Benchmark Clinic", AdminEmail: "admin@bench.example", AdminName: "Bench Admin", AdminPassword: staffPassword})
	if err != nil {
		return auditFixture{}, fmt.Errorf("bootstrap: %w", err)
	}
	staff := commands.Meta{Actor: commands.Actor{ID: boot.AdminID.String(), Kind: "staff", Role: "admin", ClinicID: boot.ClinicID}}
	pid, err := a.Commands.RegisterPatient(ctx, staff, commands.RegisterPatient{FirstName: "Noah", LastName: "Rivera", DateOfBirth: "2018-05-01"})
	if err != nil {
		return auditFixture{}, fmt.Errorf("register patient: %w", err)
	}
	contactID, err := a.Commands.AddPatientContact(ctx, staff, commands.AddPatientContact{PatientID: pid, Name: "Sam Rivera", Relationship: "parent", Email: parentEmail})
	if err != nil {
		return auditFixture{}, fmt.Errorf("add contact: %w", err)
	}
	invited, err := a.Commands.InvitePortalUser(ctx, staff, commands.InvitePortalUser{PatientID: pid, ContactID: &contactID})
	if err != nil {
		return auditFixture{}, fmt.Errorf("invite: %w", err)
	}
	inv, err := a.Commands.Invitation(ctx, invited.InvitationID)
	if err != nil {
		return auditFixture{}, fmt.Errorf("load invitation: %w", err)
	}
	link := a.Commands.LinkKeys().Make(linktoken.PurposeInvitation, inv.InvitationID, uuid.Nil, inv.ExpiresAt)
	if _, err := a.Commands.AcceptInvitation(ctx, commands.Meta{}, commands.AcceptInvitation{Token: link, Password: parentPassword}); err != nil {
		return auditFixture{}, fmt.Errorf("accept invitation: %w", err)
	}
	fx := auditFixture{patientID: pid, path: "/api/v1/portal/patients/" + pid.String() + "/appointments"}
	start := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Hour)
	kinds := []string{"therapy", "evaluation", "follow_up", "consultation", "telehealth"}
	for i := range n {
		at := start.Add(time.Duration(i) * 24 * time.Hour)
		id, err := a.Commands.ScheduleAppointment(ctx, staff, commands.ScheduleAppointment{
			PatientID: pid, StartsAt: at, EndsAt: at.Add(45 * time.Minute),
			Provider: "Dr. Lane", Location: "Room " + strconv.Itoa(1+i%4), Kind: kinds[i%len(kinds)],
		})
		if err != nil {
			return auditFixture{}, fmt.Errorf("schedule appointment: %w", err)
		}
		fx.apptIDs = append(fx.apptIDs, id)
		fx.want = append(fx.want, []byte(`"`+id.String()+`"`))
	}

	// Sign in as a browser would.
	body, _ := json.Marshal(map[string]string{"email": parentEmail, "password": parentPassword})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/v1/auth/login", bytes.NewReader(body))
	if err != nil {
		return auditFixture{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return auditFixture{}, fmt.Errorf("login: %w", err)
	}
	var login struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || login.Token == "" {
		return auditFixture{}, fmt.Errorf("login as the parent answered %d (%v)", resp.StatusCode, err)
	}
	fx.token = login.Token

	// The projection shows every appointment, in order, to the parent.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fx.verifyFull(ctx, httpc, baseURL)
		if err == nil {
			return fx, nil
		}
		if time.Now().After(deadline) {
			return auditFixture{}, fmt.Errorf("the appointments never showed: %w", err)
		}
		select {
		case <-ctx.Done():
			return auditFixture{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// verifyFull decodes one response and checks it is the patient's
// appointments, every one, soonest first.
func (fx auditFixture) verifyFull(ctx context.Context, httpc *http.Client, baseURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+fx.path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+fx.token)
	resp, err := httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var got struct {
		PatientID    uuid.UUID `json:"patient_id"`
		Appointments []struct {
			ID uuid.UUID `json:"id"`
		} `json:"appointments"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return err
	}
	if got.PatientID != fx.patientID || len(got.Appointments) != len(fx.apptIDs) {
		return fmt.Errorf("patient %s with %d appointments, want %s with %d", got.PatientID, len(got.Appointments), fx.patientID, len(fx.apptIDs))
	}
	for i, ap := range got.Appointments {
		if ap.ID != fx.apptIDs[i] {
			return fmt.Errorf("appointment %d is %s, want %s", i, ap.ID, fx.apptIDs[i])
		}
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		return errors.New("no Cache-Control: no-store on a PHI answer")
	}
	return nil
}

// auditDrain waits until every projection has applied the whole log, so a
// window does not pay for the previous one's backlog.
func auditDrain(ctx context.Context, a *app.App, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		backlog, err := auditBacklog(ctx, a)
		if err != nil {
			return err
		}
		if backlog == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			logf("  projections still %d events behind after %s; going on", backlog, limit)
			return nil
		}
		select {
		case <-ctx.Done():
			return errInterrupted
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// auditBacklog is the most events any projection has still to apply.
func auditBacklog(ctx context.Context, a *app.App) (int64, error) {
	st, err := a.Engine.Status(ctx)
	if err != nil {
		return 0, err
	}
	var worst int64
	for _, s := range st {
		worst = max(worst, s.LagEvents)
	}
	return worst, nil
}

type auditWindow struct {
	a      *app.App
	httpc  *http.Client
	fx     auditFixture
	cfg    auditConfig
	chains []string
	timed  *timedAuditor
}

type auditClientResult struct {
	latencies []time.Duration
	errors    int
	firstErr  error
}

func (w auditWindow) measure(ctx context.Context, baseURL, mode string, n int) (AuditResult, error) {
	res := AuditResult{Mode: mode, Clients: n}
	// Every client's first request is decoded in full: the right patient,
	// every appointment in order.
	for range min(n, 4) {
		if err := w.fx.verifyFull(ctx, w.httpc, baseURL); err != nil {
			return res, fmt.Errorf("%s: %w", mode, err)
		}
	}
	if w.cfg.Warmup > 0 {
		w.clients(ctx, baseURL, n, w.cfg.Warmup)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	if w.cfg.Analyze {
		if _, err := w.a.Pool.Exec(ctx, `ANALYZE`); err != nil {
			return res, fmt.Errorf("analyze: %w", err)
		}
	}
	before, err := auditHead(ctx, w.a)
	if err != nil {
		return res, err
	}
	cpu0, host0 := auditProcCPU(), auditHostBusy()
	w.timed.reset(true)
	start := time.Now()
	results := w.clients(ctx, baseURL, n, w.cfg.Duration)
	elapsed := time.Since(start)
	cpu1, host1 := auditProcCPU(), auditHostBusy()
	if waits := w.timed.reset(false); len(waits) > 0 {
		l := summariseAudit(waits)
		res.AuditWait = &l
	}
	after, err := auditHead(ctx, w.a)
	if err != nil {
		return res, err
	}
	if res.Backlog, err = auditBacklog(ctx, w.a); err != nil {
		return res, err
	}

	var all []time.Duration
	for _, r := range results {
		all = append(all, r.latencies...)
		res.Errors += r.errors
		if r.firstErr != nil && res.FirstErr == "" {
			res.FirstErr = r.firstErr.Error()
		}
	}
	res.Elapsed = elapsed.Seconds()
	res.Requests = len(all)
	res.RequestsPerSec = float64(res.Requests) / elapsed.Seconds()
	res.Latency = summariseAudit(all)
	if res.Requests > 0 {
		res.GoCPU = ms(cpu1-cpu0) / float64(res.Requests)
		res.HostCPU = ms(host1-host0) / float64(res.Requests)
	}
	// Every record of the window's requests is durable once its answer
	// came, so the chain's events between the two heads are the window's
	// (the warmup's were all answered before).
	err = w.a.Pool.QueryRow(ctx,
		`SELECT count(*), count(DISTINCT xmin::text) FROM eventstore.events WHERE stream = ANY($1) AND position > $2 AND position <= $3`,
		w.chains, before, after).Scan(&res.Records, &res.Appends)
	if err != nil {
		return res, fmt.Errorf("count audit records: %w", err)
	}
	if res.Appends > 0 {
		res.RecordsPerAppend = float64(res.Records) / float64(res.Appends)
	}
	if mode == modeAudited && res.Records < res.Requests {
		return res, fmt.Errorf("audited: %d requests answered but only %d access records stored", res.Requests, res.Records)
	}
	if mode == modeUnaudited && res.Records > 0 {
		return res, fmt.Errorf("unaudited: %d access records stored", res.Records)
	}
	if !w.cfg.Projections {
		return res, nil
	}
	drainStart := time.Now()
	if err := auditDrain(ctx, w.a, w.cfg.Drain); err != nil {
		return res, err
	}
	res.Drain = time.Since(drainStart).Seconds()
	return res, nil
}

// clients runs n closed-loop clients until d has passed; the window ends
// when the last request started in it is answered.
func (w auditWindow) clients(ctx context.Context, baseURL string, n int, d time.Duration) []auditClientResult {
	until := time.Now().Add(d)
	results := make([]auditClientResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = w.client(ctx, baseURL+w.fx.path, until)
		}()
	}
	wg.Wait()
	return results
}

func (w auditWindow) client(ctx context.Context, url string, until time.Time) auditClientResult {
	r := auditClientResult{latencies: make([]time.Duration, 0, 1<<13)}
	auth := "Bearer " + w.fx.token
	var buf bytes.Buffer
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(until) {
			break
		}
		err := w.get(ctx, url, auth, &buf)
		d := time.Since(t0)
		if err != nil && ctx.Err() != nil {
			break
		}
		if err != nil {
			r.errors++
			if r.firstErr == nil {
				r.firstErr = err
			}
			time.Sleep(10 * time.Millisecond) // no hot loop while something is down
			continue
		}
		r.latencies = append(r.latencies, d)
	}
	return r
}

// get fetches the list and checks it: 200, and every appointment in it.
func (w auditWindow) get(ctx context.Context, url, auth string, buf *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	resp, err := w.httpc.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, buf.Bytes())
	}
	for _, id := range w.fx.want {
		if !bytes.Contains(buf.Bytes(), id) {
			return fmt.Errorf("answer lacks appointment %s", id)
		}
	}
	return nil
}

// auditHead is the position of the last committed event.
func auditHead(ctx context.Context, a *app.App) (int64, error) {
	var pos int64
	err := a.Pool.QueryRow(ctx, `SELECT position FROM eventstore.head`).Scan(&pos)
	return pos, err
}

// auditProcCPU is this process's user+system CPU time.
func auditProcCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// auditHostBusy is the machine's busy CPU time from /proc/stat (every
// process: Postgres, this one, and any neighbour).
func auditHostBusy() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	line, err := readFirstLine(f)
	if err != nil {
		return 0
	}
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, s := range fields[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0
		}
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += v
	}
	return time.Duration(busy) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func readFirstLine(r io.Reader) (string, error) {
	b := make([]byte, 512)
	n, err := io.ReadFull(r, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	return line, nil
}

// auditCell is a median with its range, over the runs.
func auditCell(xs []float64, format func(float64) string) string {
	if len(xs) == 0 {
		return "-"
	}
	m := format(median(xs))
	if len(xs) == 1 {
		return m
	}
	return fmt.Sprintf("%s (%s–%s)", m, format(slices.Min(xs)), format(slices.Max(xs)))
}

func (r auditReport) print() {
	r.Env.print()
	c := r.Config
	analyze := "ANALYZE after warmup"
	if !c.Analyze {
		analyze = "no ANALYZE"
	}
	projections := "projections running"
	if !c.Projections {
		projections = "projections STOPPED"
	}
	fmt.Printf("workload    GET /api/v1/portal/patients/{pid}/appointments (%d upcoming) as a signed-in parent, over HTTP on 127.0.0.1, closed loop; %s warmup + %s per row, %d run(s), %s, %s; pool max %d conns\n",
		c.Appointments, c.Warmup, c.Duration, c.Runs, analyze, projections, r.Pool)
	if c.Runs > 1 {
		fmt.Println("            each cell: median (range) of the runs")
	}
	fmt.Println()

	type key struct {
		mode    string
		clients int
	}
	by := map[key][]AuditResult{}
	for _, x := range r.Results {
		k := key{x.Mode, x.Clients}
		by[k] = append(by[k], x)
	}
	col := func(xs []AuditResult, f func(AuditResult) float64) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = f(x)
		}
		return out
	}
	rows := [][]string{{"clients", "mode", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "records/append", "wait p50 ms", "wait p99 ms", "go cpu ms/req", "host cpu ms/req", "backlog", "errors"}}
	for _, n := range c.Clients {
		for _, mode := range c.Modes {
			xs := by[key{mode, n}]
			if len(xs) == 0 {
				continue
			}
			errs := 0
			for _, x := range xs {
				errs += x.Errors
			}
			rpa, w50, w99, backlog := "-", "-", "-", "-"
			if c.Projections {
				backlog = auditCell(col(xs, func(x AuditResult) float64 { return float64(x.Backlog) }), f0)
			}
			if mode == modeAudited {
				rpa = auditCell(col(xs, func(x AuditResult) float64 { return x.RecordsPerAppend }), f1)
				wait := func(f func(AuditLatency) float64) func(AuditResult) float64 {
					return func(x AuditResult) float64 {
						if x.AuditWait == nil {
							return 0
						}
						return f(*x.AuditWait)
					}
				}
				w50 = auditCell(col(xs, wait(func(l AuditLatency) float64 { return l.P50 })), f2)
				w99 = auditCell(col(xs, wait(func(l AuditLatency) float64 { return l.P99 })), f2)
			}
			rows = append(rows, []string{strconv.Itoa(n), mode,
				auditCell(col(xs, func(x AuditResult) float64 { return x.RequestsPerSec }), f0),
				auditCell(col(xs, func(x AuditResult) float64 { return x.Latency.P50 }), f2),
				auditCell(col(xs, func(x AuditResult) float64 { return x.Latency.P95 }), f2),
				auditCell(col(xs, func(x AuditResult) float64 { return x.Latency.P99 }), f2),
				auditCell(col(xs, func(x AuditResult) float64 { return x.Latency.Max }), f1),
				rpa, w50, w99,
				auditCell(col(xs, func(x AuditResult) float64 { return x.GoCPU }), f2),
				auditCell(col(xs, func(x AuditResult) float64 { return x.HostCPU }), f2),
				backlog,
				strconv.Itoa(errs),
			})
		}
	}
	table(rows)

	if slices.Contains(c.Modes, modeAudited) && slices.Contains(c.Modes, modeUnaudited) {
		fmt.Println()
		rows = [][]string{{"clients", "audited/unaudited req/s", "per run", "p99 audited/unaudited"}}
		for _, n := range c.Clients {
			au, un := by[key{modeAudited, n}], by[key{modeUnaudited, n}]
			if len(au) == 0 || len(un) == 0 {
				continue
			}
			ratio := median(col(au, func(x AuditResult) float64 { return x.RequestsPerSec })) /
				median(col(un, func(x AuditResult) float64 { return x.RequestsPerSec }))
			var perRun []string
			var ratios []float64
			for _, a := range au {
				for _, u := range un {
					if u.Run == a.Run && u.RequestsPerSec > 0 {
						ratios = append(ratios, a.RequestsPerSec/u.RequestsPerSec)
						perRun = append(perRun, f2(a.RequestsPerSec/u.RequestsPerSec))
					}
				}
			}
			p99 := median(col(au, func(x AuditResult) float64 { return x.Latency.P99 })) /
				median(col(un, func(x AuditResult) float64 { return x.Latency.P99 }))
			rows = append(rows, []string{strconv.Itoa(n), f2(ratio) + "×", strings.Join(perRun, " "), f2(p99) + "×"})
		}
		table(rows)
	}
	for _, x := range r.Results {
		if x.FirstErr != "" {
			fmt.Printf("\nrun %d, %s, %d clients, first error: %s\n", x.Run, x.Mode, x.Clients, x.FirstErr)
		}
	}
}
