package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/projections/audittrail"
)

// stderr is where `audit verify --print-heads` writes its summary, so that
// stdout carries the heads alone. Tests replace it.
var stderr io.Writer = os.Stderr

// errNotVerified makes portalctl exit 1 when the trail does not verify.
var errNotVerified = errors.New("the PHI access trail does not verify")

func auditCmd(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("audit: want verify or export; %w", errUsage)
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, open, args[1:], out)
	case "export":
		return auditExport(ctx, open, args[1:], out)
	}
	return fmt.Errorf("audit %q: want verify or export; %w", args[0], errUsage)
}

// headsFile is what `audit verify --print-heads` writes and --heads reads.
type headsFile struct {
	VerifiedAt time.Time    `json:"verified_at"`
	Records    int          `json:"records"`
	Heads      []audit.Head `json:"heads"`
}

// readHeads reads a heads file: the object --print-heads writes, or a bare
// JSON array of heads.
func readHeads(path string) ([]audit.Head, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	var heads []audit.Head
	if bytes.HasPrefix(b, []byte("[")) {
		err = json.Unmarshal(b, &heads)
	} else {
		var f headsFile
		err = json.Unmarshal(b, &f)
		heads = f.Heads
	}
	if err != nil {
		return nil, fmt.Errorf("heads file %s: %w", path, err)
	}
	for _, h := range heads {
		if h.Chain == uuid.Nil || h.Seq < 1 || len(h.Hash) != sha256.Size*2 {
			return nil, fmt.Errorf("heads file %s: %+v is not a chain head", path, h)
		}
	}
	return heads, nil
}

func auditVerify(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	headsPath := fs.String("heads", "", "a heads file an earlier --print-heads wrote: each head must still be in its chain")
	printHeads := fs.Bool("print-heads", false, "write the verified heads as JSON to stdout, and the summary to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit verify takes no arguments; %w", errUsage)
	}
	var kept []audit.Head
	if *headsPath != "" {
		var err error
		if kept, err = readHeads(*headsPath); err != nil {
			return err
		}
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := audittrail.Verify(ctx, a.Pool, a.Store, kept)
	if err != nil {
		return err
	}
	summary := out
	if *printHeads {
		summary = stderr
	}
	fmt.Fprintf(summary, "PHI access trail: %d chains; %d records in the event log, %d rows in rm.phi_access (projection at position %d)",
		rep.Chains, rep.Checked, rep.Rows, rep.Checkpoint)
	if len(kept) > 0 {
		fmt.Fprintf(summary, "; %d kept heads checked", len(kept))
	}
	fmt.Fprintln(summary)
	if !rep.OK {
		fmt.Fprintf(summary, "NOT OK: %d chains with problems\nfirst bad record: %s\n", len(rep.Problems), rep.FirstBad)
		for _, p := range rep.Problems[1:] {
			fmt.Fprintf(summary, "  also: %s\n", p)
		}
		return errNotVerified
	}
	fmt.Fprintln(summary, "OK: every record verifies, the rows match the log")
	if *printHeads {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(headsFile{VerifiedAt: time.Now().UTC(), Records: rep.Checked, Heads: rep.Heads})
	}
	return nil
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time or YYYY-MM-DD; %w", flagName, s, errUsage)
}

func auditExport(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	patientFlag := fs.String("patient", "", "only accesses to this patient (id)")
	actorFlag := fs.String("actor", "", "only accesses by this account (id)")
	clinicFlag := fs.String("clinic-id", "", "only this clinic's trail (its staff, its patients); all clinics when left out")
	fromFlag := fs.String("from", "", "from this time on (RFC 3339 or YYYY-MM-DD)")
	toFlag := fs.String("to", "", "before this time (RFC 3339 or YYYY-MM-DD; exclusive)")
	outPath := fs.String("out", "", "write to this file (created 0600) instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit export takes no arguments; %w", errUsage)
	}
	var f audittrail.Filter
	var err error
	if *patientFlag != "" {
		if f.PatientID, err = uuid.Parse(*patientFlag); err != nil {
			return fmt.Errorf("--patient %q: want a UUID; %w", *patientFlag, errUsage)
		}
	}
	if *clinicFlag != "" {
		if f.ClinicID, err = uuid.Parse(*clinicFlag); err != nil {
			return fmt.Errorf("--clinic-id %q: want a UUID; %w", *clinicFlag, errUsage)
		}
	}
	f.ActorID = strings.TrimSpace(*actorFlag)
	if f.From, err = parseTime("from", *fromFlag); err != nil {
		return err
	}
	if f.To, err = parseTime("to", *toFlag); err != nil {
		return err
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	records, err := audittrail.All(ctx, a.Pool, f)
	if err != nil {
		return err
	}
	names, err := actorNames(ctx, a, records)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := audit.WriteNDJSON(&buf, records, names); err != nil {
		return err
	}

	// The export discloses PHI (who looked at which patient): it is an
	// access like any other, recorded before a byte is written.
	if err := recordExport(ctx, a, f, records, buf.Bytes()); err != nil {
		return err
	}
	if *outPath == "" {
		_, err = out.Write(buf.Bytes())
		return err
	}
	file, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := file.Write(buf.Bytes()); err != nil {
		_ = file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d access records written to %s\n", len(records), *outPath)
	return nil
}

// recordExport appends the export's own access record, through a recorder
// (a chain) of this process.
func recordExport(ctx context.Context, a *app.App, f audittrail.Filter, records []audit.Access, body []byte) error {
	patients := []uuid.UUID{}
	seen := map[uuid.UUID]bool{}
	if f.PatientID != uuid.Nil {
		patients, seen[f.PatientID] = append(patients, f.PatientID), true
	}
	entities := make([]audit.Entity, 0, len(records))
	for _, r := range records {
		entities = append(entities, audit.Entity{Type: "AuditEvent", ID: r.RecordID})
		for _, p := range r.Patients {
			if !seen[p] {
				patients, seen[p] = append(patients, p), true
			}
		}
	}
	if err := recordOperatorAccess(ctx, a, f.ClinicID, audit.SubtypeExport, "portalctl audit export", patients, entities, body); err != nil {
		return fmt.Errorf("the export could not be recorded, so nothing is written: %w", err)
	}
	return nil
}

// recordOperatorAccess appends the access record of an operator's read of
// PHI (portalctl audit export, portalctl replay) before anything is shown.
// The agent is the tool; its user agent names the operating-system user who
// ran it.
func recordOperatorAccess(ctx context.Context, a *app.App, clinic uuid.UUID, subtype, route string, patients []uuid.UUID, entities []audit.Entity, body []byte) error {
	host, _ := os.Hostname()
	ua := "portalctl"
	if u := os.Getenv("USER"); u != "" {
		ua += " (user " + u + ")"
	}
	sum := sha256.Sum256(body)
	rec := phiaudit.NewRecorder(a.Store, a.Config.InstanceName, a.Logger, phiaudit.WithWriters(1))
	defer rec.Close()
	_, err := rec.Record(ctx, audit.Access{
		Recorded:      time.Now(),
		Subtype:       subtype,
		Outcome:       audit.OutcomeSuccess,
		Agent:         audit.Agent{ID: "portalctl", Kind: "system", ClinicID: clinic, Network: host, UserAgent: ua},
		Patients:      patients,
		Entities:      entities,
		Purpose:       audit.PurposeCompliance,
		CorrelationID: uuid.NewString(),
		Route:         route,
		BodySHA256:    hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return fmt.Errorf("the access could not be recorded, so nothing is shown: %w", err)
	}
	return nil
}

// actorNames are the display names of the records' agents, from their
// accounts' streams (as GET /audit/access/export names them).
func actorNames(ctx context.Context, a *app.App, records []audit.Access) (map[string]string, error) {
	names := map[string]string{}
	for _, r := range records {
		id := r.Agent.ID
		if _, done := names[id]; done || id == "" {
			continue
		}
		uid, err := uuid.Parse(id)
		if err != nil {
			names[id] = id // a system actor such as portalctl
			continue
		}
		var name string
		switch r.Agent.Kind {
		case "staff":
			acc, err := a.Commands.StaffAccount(ctx, uid)
			if _, refused := domain.AsError(err); err != nil && !refused {
				return nil, err
			}
			name = acc.Name
		case "portal":
			acc, err := a.Commands.PortalAccount(ctx, uid)
			if _, refused := domain.AsError(err); err != nil && !refused {
				return nil, err
			}
			name = acc.Name
		}
		names[id] = name
	}
	return names, nil
}
