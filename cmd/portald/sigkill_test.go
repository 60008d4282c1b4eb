package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/internal/testproc"
)

// childEnv makes the test binary run portald's main instead of the tests:
// the kill test starts its own executable as the portald under test, so the
// child is exactly this package's main, built with the same flags as the
// test (with -race, the child runs under the race detector too).
const childEnv = "PORTALD_TEST_RUN_AS_PORTALD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Args = append([]string{"portald"}, strings.Fields(os.Getenv(childEnv+"_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSIGKILLMidStreamEndsEqualToAFreshRebuild is the requirement
// "a projection killed mid-batch and restarted ends with a read model equal
// to a fresh rebuild; no event is applied twice", proven on real portald
// processes: one is killed with SIGKILL while it is working through a backlog
// of patient events (several times, with more events appended in between),
// then one more runs until it reaches the head of the log and is stopped with
// SIGTERM. Its read model must equal the patients' events exactly, equal a
// fresh rebuild, and must have applied every event exactly once.
//
// The patients projection is idempotent by design (version guards, ON
// CONFLICT), so a double application would leave no trace in its rows. The
// test therefore puts a BEFORE INSERT trigger on the live generation's tables
// that records every application in a probe table inside the same
// transaction (the trigger fires for ON CONFLICT rows too), and bumps a
// sequence, which is not transactional: attempts that a kill rolled back
// show as the difference between the two. The trigger also has a trap: when
// armed, it holds the application inside its transaction, so that some kills
// land there for certain rather than by luck.
func TestSIGKILLMidStreamEndsEqualToAFreshRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts and SIGKILLs several portald processes over a backlog of thousands of events (15-40 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()

	// Database, migrations, the patients projection's generation 1: set up
	// here, so the probe is in place before any portald applies anything.
	a := testapp.New(t)
	k := &killTest{t: t, ctx: ctx, dbURL: a.Config.DatabaseURL, pool: a.Pool, store: a.Store, model: newModel()}
	k.installProbe()

	// A backlog for the first portald, and more appended while it works.
	k.appendPatients(450, 3) // 1800 events
	const (
		minRounds   = 4    // SIGKILLs that hit a portald in mid-stream
		maxRounds   = 8    // give up after this many kills
		minBacklog  = 1000 // events ahead of the checkpoint when a portald starts
		killAfter   = 200  // events a portald applies before it is killed
		writeDuring = 120  // patients (x3 events) appended while the first one runs
	)
	// Odd rounds kill at a random moment. Even rounds kill inside the
	// transaction of an event: the probe's trap holds the application (after
	// BEGIN and the checkpoint's row lock) at its read-model insert, or at
	// the checkpoint update once its rows are written, until the SIGKILL has
	// landed.
	midStream, trapped := 0, 0
	var torn int64 // attempts rolled back so far
	for round := 1; midStream < minRounds; round++ {
		if round > maxRounds {
			t.Fatalf("only %d of %d SIGKILLs hit a portald before it caught up; want %d (is the machine too slow to poll, or the projection too fast?)",
				midStream, maxRounds, minRounds)
		}
		trap := ""
		if round%2 == 0 {
			trap = []string{"insert", "checkpoint"}[(round/2)%2]
		}
		if backlog := k.head() - k.checkpoint(); backlog < minBacklog {
			k.appendPatients(int(minBacklog-backlog)/3+1, 2)
		}
		k.addContactsToSomePatients(40)
		from := k.checkpoint()
		child := k.startPortald(fmt.Sprintf("sigkill-%d", round))

		var writer sync.WaitGroup
		var writeErr error
		defer writer.Wait()
		if round == 1 {
			// Events committed while the projection is busy, so the kill also
			// lands between events the live subscription picked up.
			writer.Go(func() { writeErr = k.tryAppendPatients(writeDuring, 2) })
		}
		k.waitFor(child, fmt.Sprintf("round %d: the checkpoint to pass %d", round, from+killAfter), func() bool {
			return k.checkpoint() >= from+killAfter
		})
		k.assertHasSessions(child)
		if trap != "" {
			k.setTrap(trap)
			k.waitFor(child, fmt.Sprintf("round %d: an application to be held in the trap", round), func() bool {
				return k.sessionsOf(child, "wait_event = 'PgSleep'") > 0 || k.checkpoint() >= k.head()
			})
		} else {
			// The poll tends to see a commit just after it happened; a random
			// pause moves the kill to any point of the event in hand.
			time.Sleep(time.Duration(rand.IntN(15000)) * time.Microsecond)
		}
		child.kill()
		writer.Wait()
		if writeErr != nil {
			t.Fatalf("append while portald runs: %v", writeErr)
		}

		// A COMMIT sent just before the kill may still complete on the
		// server, and a trapped application is still in its trigger: look
		// only once the dead process's sessions have ended.
		k.waitSessionsGone(child)
		if trap != "" {
			k.setTrap("")
		}
		at, attempts, applied := k.probeCounts()
		head, committed := k.head(), k.eventsUpTo(at)
		rolledBack := attempts - applied - torn
		torn = attempts - applied
		how := "at a random moment"
		if trap != "" {
			how = map[string]string{"insert": "inside an event's transaction, at its read-model insert",
				"checkpoint": "inside an event's transaction, at its checkpoint update"}[trap]
		}
		t.Logf("round %d (%v): SIGKILL %s at checkpoint %d of head %d (%d events applied; %d inserts of the event in hand rolled back)",
			round, time.Since(started).Round(time.Millisecond), how, at, head, applied, rolledBack)
		// Rows and checkpoint commit together: exactly the events up to the
		// checkpoint have been applied, once each, even right after a kill.
		k.assertNoDuplicateApplications(fmt.Sprintf("after round %d", round))
		if applied != committed {
			t.Fatalf("round %d: after SIGKILL at checkpoint %d, %d applications are committed for %d events up to it (rows and checkpoint disagree)",
				round, at, applied, committed)
		}
		// The transaction in hand holds its message's event and up to 255
		// read ahead (projections.Config.ReadAhead): all of them roll back.
		// (A projection that caught up before the trap held anything was
		// killed idle: nothing to roll back, and the round does not count.)
		if trap != "" && at < head && (rolledBack < 1 || rolledBack > 256) {
			t.Fatalf("round %d: the SIGKILL inside an event's transaction rolled back %d inserts, want 1 to 256", round, rolledBack)
		}
		if at >= head {
			t.Logf("round %d: portald had caught up before the kill; this round does not count as mid-stream", round)
			continue
		}
		if at <= from {
			t.Fatalf("round %d: portald made no progress (checkpoint %d)", round, at)
		}
		midStream++
		if trap != "" {
			trapped++
		}
	}
	if trapped == 0 {
		t.Fatal("no SIGKILL landed inside an event's transaction")
	}

	// More events after the last kill, then a portald that runs to the head
	// and is stopped gracefully.
	k.appendPatients(100, 2)
	k.addContactsToSomePatients(40)
	head := k.head()
	final := k.startPortald("sigkill-final")
	k.waitFor(final, fmt.Sprintf("the checkpoint to reach the head %d", head), func() bool { return k.checkpoint() >= head })
	final.term()
	k.waitSessionsGone(final)
	if at := k.checkpoint(); at != head {
		t.Fatalf("checkpoint %d after graceful stop, want the head %d", at, head)
	}

	// Exactly once: every patient event applied once, none twice.
	k.assertNoDuplicateApplications("at the end")
	_, attempts, applied := k.probeCounts()
	if want := k.eventsUpTo(head); applied != want {
		t.Fatalf("%d applications committed for %d patient events", applied, want)
	}
	t.Logf("(%v) %d events applied exactly once; %d attempts were rolled back by kills or shutdowns",
		time.Since(started).Round(time.Millisecond), applied, attempts-applied)
	var dead, skipped int64
	if err := k.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM projection.dead_letters WHERE name = 'patients'),
			(SELECT skipped_unknown FROM projection.checkpoints WHERE name = 'patients' AND state = 'live')`).Scan(&dead, &skipped); err != nil {
		t.Fatal(err)
	}
	if dead != 0 || skipped != 0 {
		t.Fatalf("patients projection has %d dead letters and %d skipped events, want none", dead, skipped)
	}

	// The read model is what the events say.
	k.assertModel("the read model after the kills")

	// And equals a fresh rebuild through the batched path, row for row.
	if _, err := k.pool.Exec(ctx, `CREATE TABLE sigkill_probe.patients_live AS SELECT * FROM rm.patients;
		CREATE TABLE sigkill_probe.contacts_live AS SELECT * FROM rm.patient_contacts`); err != nil {
		t.Fatal(err)
	}
	res, err := a.Engine.Rebuild(ctx, "patients", nil)
	if err != nil {
		t.Fatalf("fresh rebuild: %v", err)
	}
	if res.Generation != 2 || res.Position != uint64(head) || res.Events != k.eventsUpTo(head) {
		t.Fatalf("rebuild = %+v, want generation 2 of %d events up to %d", res, k.eventsUpTo(head), head)
	}
	var onRebuilt int
	if err := k.pool.QueryRow(ctx, `SELECT count(DISTINCT view_name) FROM information_schema.view_table_usage
		WHERE view_schema = 'rm' AND view_name IN ('patients', 'patient_contacts') AND table_schema = 'proj_patients_g2'`).Scan(&onRebuilt); err != nil {
		t.Fatal(err)
	}
	if onRebuilt != 2 {
		t.Fatalf("%d of the 2 rm views read the rebuilt generation", onRebuilt)
	}
	for _, c := range []struct{ live, rebuilt string }{
		{"sigkill_probe.patients_live", "rm.patients"},
		{"sigkill_probe.contacts_live", "rm.patient_contacts"},
	} {
		var onlyLive, onlyRebuilt, n int64
		err := k.pool.QueryRow(ctx, fmt.Sprintf(`SELECT
				(SELECT count(*) FROM (SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM %[2]s) d),
				(SELECT count(*) FROM (SELECT * FROM %[2]s EXCEPT ALL SELECT * FROM %[1]s) d),
				(SELECT count(*) FROM %[2]s)`, c.live, c.rebuilt)).Scan(&onlyLive, &onlyRebuilt, &n)
		if err != nil {
			t.Fatal(err)
		}
		if onlyLive != 0 || onlyRebuilt != 0 {
			t.Fatalf("%s differs from a fresh rebuild: %d rows only in the killed-and-restarted model, %d only in the rebuild", c.rebuilt, onlyLive, onlyRebuilt)
		}
		t.Logf("%s: %d rows, identical to a fresh rebuild", c.rebuilt, n)
	}
	k.assertModel("the fresh rebuild")
	t.Logf("%d SIGKILLs mid-stream (%d inside an event's transaction), %d events, in %v",
		midStream, trapped, k.eventsUpTo(head), time.Since(started).Round(time.Millisecond))
}

type killTest struct {
	t     *testing.T
	ctx   context.Context
	dbURL string
	pool  *pgxpool.Pool
	store eventstore.Store
	model *model
}

// installProbe records, in the applying transaction, every row the live
// generation's tables are asked to insert.
func (k *killTest) installProbe() {
	k.t.Helper()
	var gen int
	if err := k.pool.QueryRow(k.ctx, `SELECT generation FROM projection.checkpoints WHERE name = 'patients' AND state = 'live'`).Scan(&gen); err != nil {
		k.t.Fatalf("no live patients generation: %v", err)
	}
	if gen != 1 {
		k.t.Fatalf("live patients generation %d on a fresh database, want 1", gen)
	}
	_, err := k.pool.Exec(k.ctx, `
		CREATE SCHEMA sigkill_probe;
		CREATE SEQUENCE sigkill_probe.attempts;
		CREATE TABLE sigkill_probe.applied (tbl text NOT NULL, key uuid NOT NULL, version bigint NOT NULL, txid xid8 NOT NULL DEFAULT pg_current_xact_id());
		-- Armed, the trap holds an application at one point of its
		-- transaction long enough for the test to see it and SIGKILL the
		-- process: at the read-model insert, or at the checkpoint update
		-- (the last statement before COMMIT).
		CREATE TABLE sigkill_probe.trap (armed_at text);
		INSERT INTO sigkill_probe.trap VALUES (NULL);
		CREATE FUNCTION sigkill_probe.hold(here text) RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			-- Once per transaction: one may hold many events (read-ahead).
			IF (SELECT armed_at FROM sigkill_probe.trap) = here
			   AND current_setting('sigkill_probe.held', true) IS DISTINCT FROM 'yes' THEN
				PERFORM set_config('sigkill_probe.held', 'yes', true);
				PERFORM pg_sleep(0.5);
			END IF;
		END $$;
		CREATE FUNCTION sigkill_probe.attempt() RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM nextval('sigkill_probe.attempts');
			PERFORM sigkill_probe.hold('insert');
		END $$;
		CREATE FUNCTION sigkill_probe.checkpoint_moves() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM sigkill_probe.hold('checkpoint');
			RETURN NEW;
		END $$;
		CREATE TRIGGER sigkill_probe BEFORE UPDATE ON projection.checkpoints FOR EACH ROW
			WHEN (NEW.name = 'patients' AND NEW.generation = 1 AND NEW.position > OLD.position)
			EXECUTE FUNCTION sigkill_probe.checkpoint_moves();
		CREATE FUNCTION sigkill_probe.patient_applied() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM sigkill_probe.attempt();
			INSERT INTO sigkill_probe.applied (tbl, key, version) VALUES ('patients', NEW.patient_id, NEW.version);
			RETURN NEW;
		END $$;
		CREATE FUNCTION sigkill_probe.contact_applied() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM sigkill_probe.attempt();
			INSERT INTO sigkill_probe.applied (tbl, key, version) VALUES ('patient_contacts', NEW.contact_id, NEW.version);
			RETURN NEW;
		END $$;
		CREATE TRIGGER probe BEFORE INSERT ON proj_patients_g1.patients FOR EACH ROW EXECUTE FUNCTION sigkill_probe.patient_applied();
		CREATE TRIGGER probe BEFORE INSERT ON proj_patients_g1.patient_contacts FOR EACH ROW EXECUTE FUNCTION sigkill_probe.contact_applied();`)
	if err != nil {
		k.t.Fatalf("probe: %v", err)
	}
}

// probeCounts returns, in one snapshot, the live checkpoint, the application
// attempts (kept even when rolled back) and the committed applications.
func (k *killTest) probeCounts() (checkpoint eventstore.Position, attempts, applied int64) {
	k.t.Helper()
	var pos int64
	err := k.pool.QueryRow(k.ctx, `SELECT (SELECT position FROM projection.checkpoints WHERE name = 'patients' AND state = 'live'),
		(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sigkill_probe.attempts),
		(SELECT count(*) FROM sigkill_probe.applied)`).Scan(&pos, &attempts, &applied)
	if err != nil {
		k.t.Fatal(err)
	}
	return eventstore.Position(pos), attempts, applied
}

// setTrap arms the trap at "insert" or "checkpoint", or disarms it ("").
func (k *killTest) setTrap(at string) {
	k.t.Helper()
	if _, err := k.pool.Exec(k.ctx, `UPDATE sigkill_probe.trap SET armed_at = nullif($1, '')`, at); err != nil {
		k.t.Fatal(err)
	}
}

// sessionsOf counts a portald's database sessions (their application_name
// is its instance name) that match cond.
func (k *killTest) sessionsOf(c *portald, cond string) int {
	k.t.Helper()
	var n int
	if err := k.pool.QueryRow(k.ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND `+cond, c.name).Scan(&n); err != nil {
		k.t.Fatal(err)
	}
	return n
}

// assertHasSessions checks that a running portald's sessions can be told
// apart, or waitSessionsGone would prove nothing.
func (k *killTest) assertHasSessions(c *portald) {
	k.t.Helper()
	if k.sessionsOf(c, "true") == 0 {
		k.t.Fatalf("no database session of the running portald %s carries its application_name", c.name)
	}
}

// waitSessionsGone waits until Postgres has ended every session of a
// portald that exited (their application_name is its instance name).
func (k *killTest) waitSessionsGone(c *portald) {
	k.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := k.sessionsOf(c, "true")
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%d database sessions of portald %s still open 30s after it exited", n, c.name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (k *killTest) assertNoDuplicateApplications(when string) {
	k.t.Helper()
	rows, err := k.pool.Query(k.ctx, `SELECT tbl, key::text, count(*), array_agg(txid::text) FROM sigkill_probe.applied GROUP BY tbl, key HAVING count(*) > 1 LIMIT 10`)
	if err != nil {
		k.t.Fatal(err)
	}
	defer rows.Close()
	var dups []string
	for rows.Next() {
		var tbl, key string
		var n int64
		var txids []string
		if err := rows.Scan(&tbl, &key, &n, &txids); err != nil {
			k.t.Fatal(err)
		}
		dups = append(dups, fmt.Sprintf("%s %s applied %d times (transactions %v)", tbl, key, n, txids))
	}
	if err := rows.Err(); err != nil {
		k.t.Fatal(err)
	}
	if len(dups) > 0 {
		k.t.Fatalf("%s, events were applied twice:\n  %s", when, strings.Join(dups, "\n  "))
	}
}

func (k *killTest) checkpoint() eventstore.Position {
	k.t.Helper()
	var pos int64
	if err := k.pool.QueryRow(k.ctx, `SELECT position FROM projection.checkpoints WHERE name = 'patients' AND state = 'live'`).Scan(&pos); err != nil {
		k.t.Fatal(err)
	}
	return eventstore.Position(pos)
}

// head is the position of the last patient event appended (every event of
// this database is a patient event, but the test does not lean on that).
func (k *killTest) head() eventstore.Position {
	k.model.mu.Lock()
	defer k.model.mu.Unlock()
	return k.model.head
}

// eventsUpTo counts the patient events at or before pos.
func (k *killTest) eventsUpTo(pos eventstore.Position) int64 {
	k.model.mu.Lock()
	defer k.model.mu.Unlock()
	// Concurrent appends record their positions out of order.
	sort.Slice(k.model.positions, func(i, j int) bool { return k.model.positions[i] < k.model.positions[j] })
	i := sort.Search(len(k.model.positions), func(i int) bool { return k.model.positions[i] > pos })
	return int64(i)
}

// waitFor polls cond until it holds, the child dies, or the deadline passes.
func (k *killTest) waitFor(c *portald, what string, cond func() bool) {
	k.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		select {
		case <-c.exited:
			k.t.Fatalf("waiting for %s: portald %s exited: %v", what, c.name, c.err)
		default:
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("waiting for %s: gave up after 45s (checkpoint %d, head %d)", what, k.checkpoint(), k.head())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// --- the portald child ---

type portald struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	out    *testproc.Buffer
	exited chan struct{}
	err    error // set before exited closes
}

func (k *killTest) startPortald(instance string) *portald {
	k.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		k.t.Fatal(err)
	}
	// The instance name marks the child's database sessions.
	dbURL, err := url.Parse(k.dbURL)
	if err != nil {
		k.t.Fatal(err)
	}
	q := dbURL.Query()
	q.Set("application_name", instance)
	dbURL.RawQuery = q.Encode()
	c := &portald{t: k.t, name: instance, out: &testproc.Buffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^$")
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTAL_") {
			env = append(env, kv)
		}
	}
	c.cmd.Env = append(env,
		childEnv+"=1",
		childEnv+"_ARGS=--role projector",
		"PORTAL_DATABASE_URL="+dbURL.String(),
		"PORTAL_EVENTSTORE=postgres",
		"PORTAL_HTTP_ADDR=127.0.0.1:0", // a free port, chosen by the kernel
		"PORTAL_LOG_LEVEL=info",
		"PORTAL_INSTANCE="+instance,
	)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		k.t.Fatalf("start portald: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	k.t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		out := c.out.String()
		if strings.Contains(out, "WARNING: DATA RACE") {
			k.t.Errorf("portald %s reported a data race", c.name)
		}
		if k.t.Failed() {
			k.t.Logf("portald %s (pid %d) output:\n%s", c.name, c.cmd.Process.Pid, out)
		}
	})
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *portald) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("kill portald %s: %v", c.name, err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("portald %s still running 30s after SIGKILL", c.name)
	}
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		c.t.Fatalf("portald %s ended with %v before the SIGKILL", c.name, c.err)
	}
}

// term sends SIGTERM and expects a clean exit.
func (c *portald) term() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("SIGTERM portald %s: %v", c.name, err)
	}
	select {
	case <-c.exited:
	case <-time.After(40 * time.Second):
		c.t.Fatalf("portald %s still running 40s after SIGTERM", c.name)
	}
	if c.err != nil {
		c.t.Fatalf("portald %s after SIGTERM: %v, want a clean exit", c.name, c.err)
	}
}

// --- what was appended ---

type patientRow struct {
	id, clinic              uuid.UUID
	first, last, dob, email string
	registeredAt            time.Time
	version                 int64
	contacts                int // contacts on the stream, for the next email
}

type contactRow struct {
	id, patient, clinic  uuid.UUID
	name, relation, mail string
	addedAt              time.Time
	version              int64
}

type model struct {
	mu        sync.Mutex
	clinics   []uuid.UUID
	patients  map[uuid.UUID]*patientRow
	order     []uuid.UUID
	contacts  map[uuid.UUID]contactRow
	positions []eventstore.Position // of every event appended
	head      eventstore.Position
	n         int
}

func newModel() *model {
	return &model{
		clinics:  []uuid.UUID{uuid.New(), uuid.New(), uuid.New()},
		patients: map[uuid.UUID]*patientRow{},
		contacts: map[uuid.UUID]contactRow{},
	}
}

func (m *model) record(res eventstore.AppendResult, events int) {
	// Positions are gap-free and an append's events are consecutive.
	for i := events - 1; i >= 0; i-- {
		m.positions = append(m.positions, res.Position-eventstore.Position(i))
	}
	m.head = max(m.head, res.Position)
}

func event(e interface{ EventType() string }, clinic uuid.UUID, at time.Time) eventstore.EventData {
	data, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return eventstore.EventData{
		ID: uuid.New(), Type: e.EventType(), SchemaVersion: 1, Data: data,
		Metadata: eventstore.Metadata{ClinicID: clinic.String(), ActorID: "sigkill-test", ActorKind: "system", RecordedAt: at},
	}
}

// appendPatients registers n patients, each with contacts contacts in the
// same append, from four concurrent writers (the store group-commits them).
func (k *killTest) appendPatients(n, contacts int) {
	k.t.Helper()
	if err := k.tryAppendPatients(n, contacts); err != nil {
		k.t.Fatalf("append: %v", err)
	}
}

// tryAppendPatients is appendPatients for any goroutine.
func (k *killTest) tryAppendPatients(n, contacts int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if err := k.appendPatient(contacts); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (k *killTest) appendPatient(contacts int) error {
	m := k.model
	m.mu.Lock()
	m.n++
	i := m.n
	m.mu.Unlock()
	at := time.Now().UTC().Truncate(time.Microsecond)
	p := &patientRow{
		id: uuid.New(), clinic: m.clinics[i%len(m.clinics)],
		first: fmt.Sprintf("First%d", i), last: fmt.Sprintf("Last%d", i%97),
		dob:          time.Date(1950+i%60, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC).Format(time.DateOnly),
		registeredAt: at, version: 1,
	}
	if i%2 == 0 {
		p.email = fmt.Sprintf("patient%d@example.test", i)
	}
	events := []eventstore.EventData{event(patient.Registered{
		PatientID: p.id, ClinicID: p.clinic, FirstName: p.first, LastName: p.last, DateOfBirth: p.dob, Email: p.email,
	}, p.clinic, at)}
	var added []contactRow
	for j := range contacts {
		c := k.contactFor(p, j+2, at) // the Registered event is version 1
		added = append(added, c)
		events = append(events, event(patient.ContactAdded{
			PatientID: p.id, ContactID: c.id, Name: c.name, Relationship: c.relation, Email: c.mail,
		}, p.clinic, at))
	}
	stream := eventstore.StreamName(patient.Category, p.id.String())
	res, err := k.store.Append(k.ctx, stream, eventstore.NoStream(), events...)
	if err != nil {
		return err
	}
	if res.Version != int64(len(events)) {
		return fmt.Errorf("%s: version %d after %d events", stream, res.Version, len(events))
	}
	p.contacts = contacts
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patients[p.id] = p
	m.order = append(m.order, p.id)
	for _, c := range added {
		m.contacts[c.id] = c
	}
	m.record(res, len(events))
	return nil
}

// contactFor is the contact at stream version version of p's stream.
func (k *killTest) contactFor(p *patientRow, version int, at time.Time) contactRow {
	return contactRow{
		id: uuid.New(), patient: p.id, clinic: p.clinic,
		name:     fmt.Sprintf("Contact %d of %s", version-2, p.first),
		relation: patient.Relationships[version%len(patient.Relationships)],
		mail:     fmt.Sprintf("contact%d.%s@example.test", version-2, p.id),
		addedAt:  at, version: int64(version),
	}
}

// addContactsToSomePatients appends one more contact to n patients appended
// earlier, expecting each stream's exact version.
func (k *killTest) addContactsToSomePatients(n int) {
	k.t.Helper()
	m := k.model
	m.mu.Lock()
	var picked []*patientRow
	for i := 0; i < len(m.order) && len(picked) < n; i += max(1, len(m.order)/n) {
		picked = append(picked, m.patients[m.order[i]])
	}
	m.mu.Unlock()
	for _, p := range picked {
		at := time.Now().UTC().Truncate(time.Microsecond)
		version := 1 + p.contacts + 1
		c := k.contactFor(p, version, at)
		stream := eventstore.StreamName(patient.Category, p.id.String())
		res, err := k.store.Append(k.ctx, stream, eventstore.Exactly(int64(version-1)), event(patient.ContactAdded{
			PatientID: p.id, ContactID: c.id, Name: c.name, Relationship: c.relation, Email: c.mail,
		}, p.clinic, at))
		if err != nil {
			k.t.Fatalf("append contact: %v", err)
		}
		if res.Version != int64(version) {
			k.t.Fatalf("%s: version %d, want %d", stream, res.Version, version)
		}
		m.mu.Lock()
		p.contacts++
		m.contacts[c.id] = c
		m.record(res, 1)
		m.mu.Unlock()
	}
}

// assertModel compares the rm views with what was appended: one row per
// patient and per contact, each with its event's stream version.
func (k *killTest) assertModel(what string) {
	k.t.Helper()
	m := k.model
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	for _, p := range m.patients {
		want[patientLine(p.id, p.clinic, p.first, p.last, p.dob, p.email, p.registeredAt, p.version)] = true
	}
	for _, c := range m.contacts {
		want[contactLine(c.id, c.patient, c.clinic, c.name, c.relation, c.mail, c.addedAt, c.version)] = true
	}
	got := map[string]bool{}
	var dup []string
	add := func(line string) {
		if got[line] {
			dup = append(dup, line)
		}
		got[line] = true
	}
	rows, err := k.pool.Query(k.ctx, `SELECT patient_id, clinic_id, first_name, last_name, date_of_birth::text, coalesce(email, ''), registered_at, version FROM rm.patients`)
	if err != nil {
		k.t.Fatal(err)
	}
	for rows.Next() {
		var id, clinic uuid.UUID
		var first, last, dob, email string
		var at time.Time
		var version int64
		if err := rows.Scan(&id, &clinic, &first, &last, &dob, &email, &at, &version); err != nil {
			k.t.Fatal(err)
		}
		add(patientLine(id, clinic, first, last, dob, email, at, version))
	}
	if rows.Err() != nil {
		k.t.Fatal(rows.Err())
	}
	rows, err = k.pool.Query(k.ctx, `SELECT contact_id, patient_id, clinic_id, name, relationship, email, added_at, version FROM rm.patient_contacts`)
	if err != nil {
		k.t.Fatal(err)
	}
	for rows.Next() {
		var id, pid, clinic uuid.UUID
		var name, rel, mail string
		var at time.Time
		var version int64
		if err := rows.Scan(&id, &pid, &clinic, &name, &rel, &mail, &at, &version); err != nil {
			k.t.Fatal(err)
		}
		add(contactLine(id, pid, clinic, name, rel, mail, at, version))
	}
	if rows.Err() != nil {
		k.t.Fatal(rows.Err())
	}
	var missing, extra []string
	for l := range want {
		if !got[l] {
			missing = append(missing, l)
		}
	}
	for l := range got {
		if !want[l] {
			extra = append(extra, l)
		}
	}
	if len(missing)+len(extra)+len(dup) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		k.t.Fatalf("%s is not what the events say: %d rows missing, %d unexpected, %d duplicated; first missing %v, first unexpected %v, first duplicated %v",
			what, len(missing), len(extra), len(dup), firstFew(missing), firstFew(extra), firstFew(dup))
	}
	k.t.Logf("%s: %d patients and %d contacts, as the events say, each at its stream version", what, len(m.patients), len(m.contacts))
}

func patientLine(id, clinic uuid.UUID, first, last, dob, email string, at time.Time, version int64) string {
	return fmt.Sprintf("patient %s clinic=%s %q %q dob=%s email=%q at=%s v%d", id, clinic, first, last, dob, email, at.UTC().Format(time.RFC3339Nano), version)
}

func contactLine(id, pid, clinic uuid.UUID, name, rel, mail string, at time.Time, version int64) string {
	return fmt.Sprintf("contact %s patient=%s clinic=%s %q %s %q at=%s v%d", id, pid, clinic, name, rel, mail, at.UTC().Format(time.RFC3339Nano), version)
}

func firstFew(s []string) []string { return s[:min(3, len(s))] }
