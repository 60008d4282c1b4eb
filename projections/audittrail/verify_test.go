package audittrail_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/projections/audittrail"
)

const perChain = 15

// fixture is a Portico whose audit trail holds 2×15 records written by two
// recorders (two processes' chains) at once, projected into rm.phi_access.
// The engine is stopped afterwards, so nothing moves while a test tampers.
type fixture struct {
	app   *app.App
	ctx   context.Context
	a, b  uuid.UUID                    // the two chains, a sorting before b
	recs  map[uuid.UUID][]audit.Access // as the recorders returned them, by seq
	table string                       // the projection's table behind rm.phi_access
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{app: testapp.New(t), ctx: context.Background(), recs: map[uuid.UUID][]audit.Access{}}
	r1 := phiaudit.NewRecorder(f.app.Store, "test-1", nil, phiaudit.WithWriters(1))
	r2 := phiaudit.NewRecorder(f.app.Store, "test-2", nil, phiaudit.WithWriters(1))
	f.record(t, perChain, r1, r2)
	r1.Close()
	r2.Close()
	f.a, f.b = r1.Chain(), r2.Chain()
	if f.b.String() < f.a.String() {
		f.a, f.b = f.b, f.a
	}
	var gen int
	if err := f.app.Pool.QueryRow(f.ctx, `SELECT generation FROM projection.checkpoints WHERE name = 'audittrail' AND state = 'live'`).Scan(&gen); err != nil {
		t.Fatal(err)
	}
	f.table = fmt.Sprintf("proj_audittrail_g%d.phi_access", gen)
	f.project(t)
	return f
}

// record writes n records through each recorder, all at once, so that the
// recorders group them into shared appends.
func (f *fixture) record(t *testing.T, n int, recorders ...*phiaudit.Recorder) {
	t.Helper()
	clinic := uuid.New()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n*len(recorders))
	for i := range n {
		for _, r := range recorders {
			wg.Go(func() {
				patient := uuid.New()
				a, err := r.Record(f.ctx, audit.Access{
					Recorded: time.Now(),
					Subtype:  audit.SubtypeRead,
					Outcome:  audit.OutcomeSuccess,
					Agent: audit.Agent{ID: uuid.NewString(), Kind: "staff", Role: "staff", ClinicID: clinic,
						Network: "192.0.2.7", UserAgent: "test"},
					Patients:      []uuid.UUID{patient},
					Entities:      []audit.Entity{{Type: "Patient", ID: patient, Version: int64(i + 1)}},
					Purpose:       audit.PurposeTreatment,
					CorrelationID: uuid.NewString(),
					Route:         "GET /api/v1/patients/:pid",
					Status:        200,
					BodySHA256:    strings.Repeat("ab", 32),
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				f.recs[a.Chain] = append(f.recs[a.Chain], a)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, rs := range f.recs {
		slices.SortFunc(rs, func(x, y audit.Access) int { return int(x.Seq - y.Seq) })
	}
}

// project runs the engine until the audit trail has caught up with the log,
// then stops it.
func (f *fixture) project(t *testing.T) {
	t.Helper()
	var head int64
	if err := f.app.Pool.QueryRow(f.ctx, `SELECT coalesce(max(position), 0) FROM eventstore.events WHERE category = 'phiaudit'`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { _ = f.app.Engine.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var pos int64
		if err := f.app.Pool.QueryRow(f.ctx, `SELECT position FROM projection.checkpoints WHERE name = 'audittrail' AND state = 'live'`).Scan(&pos); err == nil && pos >= head {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the audit trail projection never reached position %d", head)
}

func (f *fixture) verify(t *testing.T, kept ...audit.Head) audittrail.Report {
	t.Helper()
	rep, err := audittrail.Verify(f.ctx, f.app.Pool, f.app.Store, kept)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// privileged runs statements as an attacker with the database's keys: in a
// connection of its own, with triggers (the append-only guards) disabled.
func (f *fixture) privileged(t *testing.T, do func(exec func(sql string, args ...any))) {
	t.Helper()
	conn, err := pgx.Connect(f.ctx, f.app.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	if _, err := conn.Exec(f.ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	do(func(sql string, args ...any) {
		t.Helper()
		tag, err := conn.Exec(f.ctx, sql, args...)
		if err != nil {
			t.Fatalf("tamper %q: %v", sql, err)
		}
		if tag.RowsAffected() == 0 {
			t.Fatalf("tamper %q changed nothing", sql)
		}
	})
}

func (f *fixture) stream(chain uuid.UUID) string {
	return eventstore.StreamName(audit.Category, chain.String())
}

// forge makes a record that links after prev as the recorder would have.
func forge(prev audit.Access, subtype string) audit.Access {
	a := prev
	a.RecordID = uuid.New()
	a.Subtype = subtype
	a.Action = audit.Action(subtype)
	a.Recorded = prev.Recorded.Add(time.Millisecond)
	return audit.Link(a, prev.Chain, &prev)
}

// insertRow writes a forged row, its columns consistent with its record.
func insertRow(exec func(string, ...any), table string, a audit.Access, position int64) {
	var clinic *uuid.UUID
	if a.Agent.ClinicID != uuid.Nil {
		clinic = &a.Agent.ClinicID
	}
	exec(`INSERT INTO `+table+` (record_id, chain, seq, position, recorded, subtype, outcome, actor_id, actor_kind, actor_role,
			clinic_id, on_behalf_of, patients, route, status, record, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $15, $16)`,
		a.RecordID, a.Chain, a.Seq, position, a.Recorded, a.Subtype, a.Outcome, a.Agent.ID, a.Agent.Kind, a.Agent.Role,
		clinic, a.Patients, a.Route, a.Status, string(a.Canonical()), a.Hash)
}

func TestVerifyIntactTrail(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rep := f.verify(t)
	if !rep.OK || rep.FirstBad != nil || len(rep.Problems) != 0 {
		t.Fatalf("an intact trail does not verify: %+v", rep)
	}
	if rep.Checked != 2*perChain || rep.Rows != 2*perChain || rep.Chains != 2 {
		t.Fatalf("checked %d events and %d rows of %d chains; want %d, %d, 2", rep.Checked, rep.Rows, rep.Chains, 2*perChain, 2*perChain)
	}
	want := []audit.Head{
		{Chain: f.a, Seq: perChain, Hash: f.recs[f.a][perChain-1].Hash},
		{Chain: f.b, Seq: perChain, Hash: f.recs[f.b][perChain-1].Hash},
	}
	if !slices.Equal(rep.Heads, want) {
		t.Fatalf("heads %+v, want %+v", rep.Heads, want)
	}
	// The heads just verified pass as kept heads.
	if rep := f.verify(t, want...); !rep.OK {
		t.Fatalf("kept heads of an intact trail: %+v", rep.FirstBad)
	}

	// Records the projection has not reached yet are projection lag, not
	// missing rows.
	r := phiaudit.NewRecorder(f.app.Store, "test-3", nil, phiaudit.WithWriters(1))
	f.record(t, 3, r)
	r.Close()
	rep = f.verify(t, want...)
	if !rep.OK || rep.Checked != 2*perChain+3 || rep.Rows != 2*perChain {
		t.Fatalf("with projection lag: ok %v, %d events, %d rows, first bad %+v", rep.OK, rep.Checked, rep.Rows, rep.FirstBad)
	}
	f.project(t)
	if rep := f.verify(t, want...); !rep.OK || rep.Rows != 2*perChain+3 || rep.Chains != 3 || len(rep.Heads) != 3 {
		t.Fatalf("after catching up: %+v", rep)
	}
}

// Each kind of tampering, in the rows and in the log, is found, and the
// first bad record is named.
func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	type want struct {
		chainB bool // the problem is in chain b (else a)
		seq    int64
		reason string // a part of the reason
	}
	cases := []struct {
		name   string
		tamper func(f *fixture, exec func(string, ...any))
		want   want
	}{
		// rm.phi_access
		{"row record edited", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE `+f.table+` SET record = jsonb_set(record::jsonb, '{subtype}', '"print"')::json WHERE chain = $1 AND seq = 7`, f.a)
		}, want{false, 7, "edited"}},
		{"row record and columns edited alike", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE `+f.table+` SET record = jsonb_set(record::jsonb, '{subtype}', '"print"')::json, subtype = 'print' WHERE chain = $1 AND seq = 7`, f.a)
		}, want{false, 7, "its content does not match its hash (edited)"}},
		{"row column edited to hide it from a patient", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE `+f.table+` SET patients = '{}' WHERE chain = $1 AND seq = 4`, f.b)
		}, want{true, 4, "patients column"}},
		{"row edited and rehashed, with every later row", func(f *fixture, exec func(string, ...any)) {
			// A careful editor re-links the rest of the chain: the rows
			// verify on their own, but no longer match the log.
			prev := f.recs[f.a][4]
			for _, a := range f.recs[f.a][5:] {
				if a.Seq == 6 {
					a.Subtype = audit.SubtypePrint
				}
				a = audit.Link(a, f.a, &prev)
				exec(`UPDATE `+f.table+` SET record = $3, hash = $4, subtype = $5 WHERE chain = $1 AND seq = $2`,
					f.a, a.Seq, string(a.Canonical()), a.Hash, a.Subtype)
				prev = a
			}
		}, want{false, 6, "hold different records"}},
		{"row deleted", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM `+f.table+` WHERE chain = $1 AND seq = 10`, f.a)
		}, want{false, 10, "deleted"}},
		{"last row deleted", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM `+f.table+` WHERE chain = $1 AND seq = $2`, f.b, perChain)
		}, want{true, perChain, "row removed"}},
		{"row forged at the end", func(f *fixture, exec func(string, ...any)) {
			forged := forge(f.recs[f.a][perChain-1], audit.SubtypeRead)
			insertRow(exec, f.table, forged, 1_000_000)
		}, want{false, perChain + 1, "a row the event log lacks"}},
		{"row forged in the middle", func(f *fixture, exec func(string, ...any)) {
			// Linked after record 4 and placed before the real record 5.
			forged := forge(f.recs[f.a][3], audit.SubtypeRead)
			insertRow(exec, f.table, forged, 0)
		}, want{false, 5, "hold different records"}},
		{"rows reordered by seq", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE `+f.table+` SET seq = CASE seq WHEN 3 THEN 8 ELSE 3 END WHERE chain = $1 AND seq IN (3, 8)`, f.b)
		}, want{true, 3, "reordered"}},
		{"row contents swapped", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE `+f.table+` t SET record = o.record, hash = o.hash FROM `+f.table+` o
				WHERE t.chain = $1 AND o.chain = $1 AND t.seq IN (3, 8) AND o.seq IN (3, 8) AND t.seq <> o.seq`, f.b)
		}, want{true, 3, "reordered"}},

		// eventstore.events
		{"event edited", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE eventstore.events SET data = jsonb_set(data::jsonb, '{subtype}', '"print"')::json WHERE stream = $1 AND version = 4`, f.stream(f.b))
		}, want{true, 4, "edited"}},
		{"event deleted", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM eventstore.events WHERE stream = $1 AND version = 6`, f.stream(f.b))
		}, want{true, 6, "deleted"}},
		{"event deleted with its row", func(f *fixture, exec func(string, ...any)) {
			exec(`DELETE FROM eventstore.events WHERE stream = $1 AND version = 6`, f.stream(f.a))
			exec(`DELETE FROM `+f.table+` WHERE chain = $1 AND seq = 6`, f.a)
		}, want{false, 6, "deleted"}},
		{"event forged in the middle", func(f *fixture, exec func(string, ...any)) {
			// Room is made at version 9 and a record linked after 8 put there.
			forged := forge(f.recs[f.b][7], audit.SubtypeExport)
			data, _ := json.Marshal(forged)
			exec(`UPDATE eventstore.events SET version = version + 1000 WHERE stream = $1 AND version >= 9`, f.stream(f.b))
			exec(`UPDATE eventstore.events SET version = version - 999 WHERE stream = $1 AND version > 1000`, f.stream(f.b))
			exec(`INSERT INTO eventstore.events (position, event_id, stream, category, version, type, schema_version, data, metadata, recorded_at)
				SELECT max(position) + 1, $1, $2, 'phiaudit', 9, $3, 1, $4, '{}', now() FROM eventstore.events`,
				forged.RecordID, f.stream(f.b), forged.EventType(), string(data))
		}, want{true, 9, "inserted"}},
		{"event forged at the end, past the projection", func(f *fixture, exec func(string, ...any)) {
			// Appended after the checkpoint the forgery looks like a record
			// the projection has not reached, but it is not linked right.
			forged := forge(f.recs[f.b][perChain-1], audit.SubtypeExport)
			forged.PrevHash = f.recs[f.b][3].Hash
			forged.Hash = forged.ComputeHash()
			data, _ := json.Marshal(forged)
			exec(`INSERT INTO eventstore.events (position, event_id, stream, category, version, type, schema_version, data, metadata, recorded_at)
				SELECT max(position) + 1, $1, $2, 'phiaudit', $3, $4, 1, $5, '{}', now() FROM eventstore.events`,
				forged.RecordID, f.stream(f.b), forged.Seq, forged.EventType(), string(data))
		}, want{true, perChain + 1, "previous hash"}},
		{"event positions swapped", func(f *fixture, exec func(string, ...any)) {
			// Positions are unique: move both out of the way, then swap.
			exec(`UPDATE eventstore.events SET position = position + 1000000000 WHERE stream = $1 AND version IN (3, 8)`, f.stream(f.a))
			exec(`UPDATE eventstore.events e SET position = o.position - 1000000000 FROM eventstore.events o
				WHERE e.stream = $1 AND o.stream = $1 AND e.version IN (3, 8) AND o.version IN (3, 8) AND e.version <> o.version`, f.stream(f.a))
		}, want{false, 3, "moved"}},
		{"event contents swapped", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE eventstore.events e SET data = o.data FROM eventstore.events o
				WHERE e.stream = $1 AND o.stream = $1 AND e.version IN (3, 8) AND o.version IN (3, 8) AND e.version <> o.version`, f.stream(f.a))
		}, want{false, 3, "holds record 8"}},
		{"event moved to another chain", func(f *fixture, exec func(string, ...any)) {
			exec(`UPDATE eventstore.events SET stream = $2, version = 100 WHERE stream = $1 AND version = 12`, f.stream(f.a), f.stream(f.b))
		}, want{false, 12, "deleted"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if rep := f.verify(t); !rep.OK {
				t.Fatalf("before tampering: %+v", rep.FirstBad)
			}
			f.privileged(t, func(exec func(string, ...any)) { c.tamper(f, exec) })
			rep := f.verify(t)
			chain := f.a
			if c.want.chainB {
				chain = f.b
			}
			if rep.OK || rep.FirstBad == nil {
				t.Fatalf("tampering not found: %+v", rep)
			}
			got := *rep.FirstBad
			if got.Chain != chain || got.Seq != c.want.seq || !strings.Contains(got.Reason, c.want.reason) {
				t.Fatalf("first bad record:\n  got  %s\n  want chain %s record %d: …%s…", got, chain, c.want.seq, c.want.reason)
			}
			t.Logf("found: %s", got)
		})
	}
}

// With both chains tampered with, the first bad record is in the chain that
// sorts first, and each chain's first problem is listed.
func TestVerifyNamesTheFirstBadChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.privileged(t, func(exec func(string, ...any)) {
		exec(`DELETE FROM eventstore.events WHERE stream = $1 AND version = 2`, f.stream(f.b))
		exec(`UPDATE `+f.table+` SET record = jsonb_set(record::jsonb, '{status}', '404')::json, status = 404 WHERE chain = $1 AND seq = 11`, f.a)
	})
	for range 3 { // the same answer every time
		rep := f.verify(t)
		if rep.OK || rep.FirstBad == nil || rep.FirstBad.Chain != f.a || rep.FirstBad.Seq != 11 {
			t.Fatalf("first bad %+v, want chain %s record 11", rep.FirstBad, f.a)
		}
		if len(rep.Problems) != 2 || rep.Problems[1].Chain != f.b || rep.Problems[1].Seq != 2 {
			t.Fatalf("problems %+v, want chain a record 11 then chain b record 2", rep.Problems)
		}
	}
}

// Records cut off the end of a chain in both places leave a shorter chain
// that verifies; only the heads an auditor kept find the cut.
func TestVerifyTruncatedTailNeedsKeptHeads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	kept := f.verify(t).Heads
	f.privileged(t, func(exec func(string, ...any)) {
		exec(`DELETE FROM eventstore.events WHERE stream = $1 AND version > $2`, f.stream(f.a), perChain-2)
		exec(`DELETE FROM `+f.table+` WHERE chain = $1 AND seq > $2`, f.a, perChain-2)
	})
	rep := f.verify(t)
	if !rep.OK {
		t.Fatalf("without kept heads a cut chain is a shorter chain, yet: %s", rep.FirstBad)
	}
	if rep.Checked != 2*perChain-2 {
		t.Fatalf("checked %d records, want %d", rep.Checked, 2*perChain-2)
	}
	rep = f.verify(t, kept...)
	if rep.OK || rep.FirstBad.Chain != f.a || rep.FirstBad.Seq != perChain-1 || !strings.Contains(rep.FirstBad.Reason, "cut off") {
		t.Fatalf("with kept heads: %+v, want chain a record %d cut off", rep.FirstBad, perChain-1)
	}
	if len(rep.Problems) != 1 {
		t.Fatalf("chain b is intact, yet: %+v", rep.Problems)
	}

	// A kept head of a chain that is gone altogether is found too.
	f.privileged(t, func(exec func(string, ...any)) {
		exec(`DELETE FROM eventstore.events WHERE stream = $1`, f.stream(f.b))
		exec(`DELETE FROM `+f.table+` WHERE chain = $1`, f.b)
	})
	rep = f.verify(t, kept...)
	if len(rep.Problems) != 2 || rep.Problems[1].Chain != f.b || rep.Problems[1].Seq != 1 {
		t.Fatalf("with chain b removed: %+v", rep.Problems)
	}
}

// Without disabling triggers, neither the rows nor the log can be changed,
// not even by the database owner the API connects as.
func TestTrailIsAppendOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, stmt := range []string{
		`UPDATE ` + f.table + ` SET subtype = 'print' WHERE seq = 1`,
		`DELETE FROM ` + f.table + ` WHERE seq = 1`,
		`TRUNCATE ` + f.table,
		`UPDATE rm.phi_access SET subtype = 'print' WHERE seq = 1`,
		`DELETE FROM rm.phi_access WHERE seq = 1`,
		`UPDATE eventstore.events SET data = '{}' WHERE category = 'phiaudit'`,
		`DELETE FROM eventstore.events WHERE category = 'phiaudit'`,
		`TRUNCATE eventstore.events`,
	} {
		_, err := f.app.Pool.Exec(f.ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", stmt, err)
		}
	}
	if rep := f.verify(t); !rep.OK || rep.Rows != 2*perChain || rep.Checked != 2*perChain {
		t.Fatalf("after the refused changes: %+v", rep)
	}
}
