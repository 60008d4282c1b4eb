package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/internal/testapp"
)

// waitProjected waits until the audit trail projection has every access
// record of the log.
func waitProjected(t *testing.T, a *app.App) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var head, pos int64
		err := a.Pool.QueryRow(ctx, `SELECT (SELECT coalesce(max(position), 0) FROM eventstore.events WHERE category = 'phiaudit'),
			(SELECT position FROM projection.checkpoints WHERE name = 'audittrail' AND state = 'live')`).Scan(&head, &pos)
		if err == nil && pos >= head {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the audit trail projection did not catch up")
}

// accessRecords reads every access record of the log.
func accessRecords(t *testing.T, store eventstore.Store) []audit.Access {
	t.Helper()
	events, err := store.ReadAll(context.Background(), eventstore.Start, 10000, eventstore.Filter{Categories: []string{audit.Category}})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Access
	for _, e := range events {
		var a audit.Access
		if err := json.Unmarshal(e.Data, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func TestAuditVerifyAndExport(t *testing.T) {
	ctx := context.Background()
	a := testapp.New(t)
	t.Setenv("PORTAL_DATABASE_URL", a.Config.DatabaseURL)
	var errOut bytes.Buffer
	stderr = &errOut
	t.Cleanup(func() { stderr = os.Stderr })

	engineCtx, stopEngine := context.WithCancel(ctx)
	engineDone := make(chan struct{})
	go func() { _ = a.Engine.Run(engineCtx); close(engineDone) }()
	t.Cleanup(func() { stopEngine(); <-engineDone })

	// Six accesses by one staff member: four to one patient, two to another.
	rec := phiaudit.NewRecorder(a.Store, "test", nil, phiaudit.WithWriters(1))
	patient, other, clinic, actor := uuid.New(), uuid.New(), uuid.New(), uuid.NewString()
	var mine []uuid.UUID
	var hashes []string
	for i := range 6 {
		p := patient
		if i%3 == 2 {
			p = other
		}
		r, err := rec.Record(ctx, audit.Access{
			Recorded: time.Now(), Subtype: audit.SubtypeRead, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{ID: actor, Kind: "staff", Role: "staff", ClinicID: clinic, Network: "192.0.2.1"},
			Patients: []uuid.UUID{p}, Entities: []audit.Entity{{Type: "Patient", ID: p}},
			Purpose: audit.PurposeTreatment, Route: "GET /api/v1/patients/:pid", Status: 200,
			BodySHA256: strings.Repeat("0f", 32),
		})
		if err != nil {
			t.Fatal(err)
		}
		if p == patient {
			mine = append(mine, r.RecordID)
			hashes = append(hashes, r.Hash)
		}
	}
	rec.Close()
	waitProjected(t, a)

	// verify: a summary on stdout.
	var out bytes.Buffer
	if err := run(ctx, []string{"audit", "verify"}, &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "OK: every record verifies") || !strings.Contains(out.String(), "6 records in the event log, 6 rows") {
		t.Fatalf("verify said:\n%s", out.String())
	}

	// --print-heads: stdout is the heads file alone.
	out.Reset()
	errOut.Reset()
	if err := run(ctx, []string{"audit", "verify", "--print-heads"}, &out); err != nil {
		t.Fatal(err)
	}
	var hf headsFile
	if err := json.Unmarshal(out.Bytes(), &hf); err != nil {
		t.Fatalf("--print-heads wrote %q: %v", out.String(), err)
	}
	if len(hf.Heads) != 1 || hf.Heads[0].Chain != rec.Chain() || hf.Heads[0].Seq != 6 || hf.Records != 6 {
		t.Fatalf("heads file %+v", hf)
	}
	if !strings.Contains(errOut.String(), "OK") {
		t.Fatalf("the summary goes to stderr with --print-heads; got %q", errOut.String())
	}
	headsPath := filepath.Join(t.TempDir(), "heads.json")
	if err := os.WriteFile(headsPath, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--heads", headsPath}, &out); err != nil {
		t.Fatalf("verify --heads: %v\n%s", err, out.String())
	}

	// export --patient: the patient's four records, as FHIR AuditEvents.
	exportPath := filepath.Join(t.TempDir(), "export.ndjson")
	out.Reset()
	if err := run(ctx, []string{"audit", "export", "--patient", patient.String(), "--out", exportPath}, &out); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(exportPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(exportPath); st.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v, want 0600", st.Mode().Perm())
	}
	var ids []uuid.UUID
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var ev struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.ResourceType != "AuditEvent" {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		ids = append(ids, uuid.MustParse(ev.ID))
	}
	slices.SortFunc(ids, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
	slices.SortFunc(mine, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
	if !slices.Equal(ids, mine) {
		t.Fatalf("exported %v, want the patient's records %v", ids, mine)
	}
	for _, h := range hashes { // each line ties back to its chain
		if !bytes.Contains(body, []byte(`"valueString":"`+h+`"`)) {
			t.Fatalf("the export lacks the hash %s", h)
		}
	}

	// The export is itself recorded, naming the patient and the bytes written.
	var exports []audit.Access
	for _, r := range accessRecords(t, a.Store) {
		if r.Subtype == audit.SubtypeExport {
			exports = append(exports, r)
		}
	}
	sum := sha256.Sum256(body)
	if len(exports) != 1 {
		t.Fatalf("%d export records, want 1", len(exports))
	}
	x := exports[0]
	if x.Agent.ID != "portalctl" || x.Agent.Kind != "system" || x.Action != "E" || x.BodySHA256 != hex.EncodeToString(sum[:]) ||
		!slices.Equal(x.Patients, []uuid.UUID{patient}) || len(x.Entities) != 4 || x.Purpose != audit.PurposeCompliance {
		t.Fatalf("export record %+v", x)
	}

	// To stdout, and a window with nothing in it: still recorded.
	out.Reset()
	if err := run(ctx, []string{"audit", "export", "--from", "2999-01-01"}, &out); err != nil || out.Len() != 0 {
		t.Fatalf("empty export: %v, %q", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "export", "--actor", actor, "--to", time.Now().Add(time.Hour).Format(time.RFC3339)}, &out); err != nil ||
		strings.Count(out.String(), "\n") != 6 {
		t.Fatalf("export by actor: %v, %d lines", err, strings.Count(out.String(), "\n"))
	}
	if n := len(accessRecords(t, a.Store)); n != 6+3 {
		t.Fatalf("%d records after three exports, want 9", n)
	}
	waitProjected(t, a)
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--heads", headsPath}, &out); err != nil {
		t.Fatalf("verify after the exports: %v\n%s", err, out.String())
	}

	// Cut the last record off the chain, in the log and the rows: only the
	// kept heads find it, and verify fails.
	conn, err := pgx.Connect(ctx, a.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var table string
	if err := conn.QueryRow(ctx, `SELECT format('proj_audittrail_g%s.phi_access', generation) FROM projection.checkpoints WHERE name = 'audittrail' AND state = 'live'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`SET session_replication_role = replica`,
		`DELETE FROM eventstore.events WHERE stream = '` + eventstore.StreamName(audit.Category, rec.Chain().String()) + `' AND version = 6`,
		`DELETE FROM ` + table + ` WHERE chain = '` + rec.Chain().String() + `' AND seq = 6`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify"}, &out); err != nil {
		t.Fatalf("without heads a shorter chain verifies: %v\n%s", err, out.String())
	}
	out.Reset()
	err = run(ctx, []string{"audit", "verify", "--heads", headsPath}, &out)
	if !errors.Is(err, errNotVerified) || !strings.Contains(out.String(), "first bad record: chain "+rec.Chain().String()+" record 6") {
		t.Fatalf("verify --heads after the cut: %v\n%s", err, out.String())
	}
}

func TestAuditUsageErrors(t *testing.T) {
	t.Setenv("PORTAL_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portico_unused?sslmode=disable")
	for _, args := range [][]string{
		{"audit"},
		{"audit", "nope"},
		{"audit", "export", "--patient", "not-a-uuid"},
		{"audit", "export", "--from", "yesterday"},
		{"audit", "verify", "extra"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "heads.json")
	if err := os.WriteFile(bad, []byte(`[{"chain":"00000000-0000-0000-0000-000000000000","seq":0,"hash":""}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"audit", "verify", "--heads", bad}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not a chain head") {
		t.Errorf("a bad heads file: %v", err)
	}
}
