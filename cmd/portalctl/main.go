// Command portalctl is the operator's tool: bootstrap a clinic, load demo
// data, add staff, follow projections, replay the read models, verify and
// export the PHI access trail.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/logging"
)

const usage = `portalctl — Portico's operator tool

  portalctl bootstrap --clinic NAME --admin-email E --admin-password P [--admin-name N]
      create a clinic and its first administrator; running it again changes nothing
  portalctl demo
      load the demo clinic and print how to sign in
  portalctl staff add --email E --role admin|staff|billing|auditor [--name N] [--password P] [--clinic-id ID]
      add a staff account (the clinic may be left out when there is only one)
  portalctl projections status | rebuild NAME | retry NAME
      each read model's position, lag and state; rebuild one beside the live one and switch; re-apply dead letters
  portalctl replay --as-of TIME|POSITION --patient ID
      what the portal's read models held for a patient at a past moment (built in a scratch schema, then dropped)
  portalctl audit verify [--heads FILE] [--print-heads]
      check the PHI access trail: every chain in the event log and in rm.phi_access (hash links, numbering,
      order), and that the two agree (rows may lag the log only beyond the projection's checkpoint). Prints
      a summary and the first bad record; exits 1 when the trail does not verify.
      --heads FILE: also check that the chain heads kept in FILE are still there with the same hash (this
      alone finds records cut off the end of a chain). --print-heads: when the trail verifies, write the
      heads as JSON to stdout and the summary to stderr; keep the file outside the database:
        portalctl audit verify --print-heads > heads-2025-01-31.json
        portalctl audit verify --heads heads-2025-01-31.json
  portalctl audit export [--patient ID] [--actor ID] [--clinic-id ID] [--from T] [--to T] [--out FILE]
      the access records of rm.phi_access as NDJSON, one FHIR R4 AuditEvent per line, oldest first
      (stdout, or FILE created 0600). T is RFC 3339 or YYYY-MM-DD; --to is exclusive. The export is itself
      a PHI access: it is recorded (agent system "portalctl", subtype export) before anything is written.
      rm.phi_access is as current as the projection of a running portald.

  portalctl blobs sweep [--older-than 24h] [--dry-run]
      remove uploaded files that no event refers to (uploads whose command was refused or never recorded)
      and that were stored more than --older-than ago; every file an event ever named stays, a retracted
      document's included. --dry-run lists what would go.

Configuration comes from the PORTAL_* environment variables (docs/configuration in API.md).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if de, ok := domain.AsError(err); ok {
			fmt.Fprintf(os.Stderr, "portalctl: %s\n", de.Message)
			for f, why := range de.Fields {
				fmt.Fprintf(os.Stderr, "  %s: %s\n", f, why)
			}
		} else {
			fmt.Fprintln(os.Stderr, "portalctl:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("see `portalctl help`")

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(out, usage)
		return nil
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	open := func() (*app.App, error) { return app.Open(ctx, cfg, logging.New(os.Stderr, "warn")) }
	switch args[0] {
	case "bootstrap":
		return bootstrap(ctx, open, args[1:], out)
	case "demo":
		a, err := open()
		if err != nil {
			return err
		}
		defer a.Close()
		s, err := demo.Load(ctx, a.Commands, a.Blobs)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%sStart the server with: go run ./cmd/portald\n", s.Describe(cfg.PublicURL))
		return nil
	case "projections":
		return projectionsCmd(ctx, open, args[1:], out)
	case "replay":
		return replayCmd(ctx, open, args[1:], out)
	case "audit":
		return auditCmd(ctx, open, args[1:], out)
	case "blobs":
		if len(args) < 2 || args[1] != "sweep" {
			return fmt.Errorf("blobs: want `blobs sweep`; %w", errUsage)
		}
		return blobsSweep(ctx, open, args[2:], out)
	case "staff":
		if len(args) < 2 || args[1] != "add" {
			return fmt.Errorf("staff: want `staff add`; %w", errUsage)
		}
		return staffAdd(ctx, open, args[2:], out)
	}
	return fmt.Errorf("unknown command %q; %w", args[0], errUsage)
}

func bootstrap(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	name := fs.String("clinic", "", "clinic name")
	email := fs.String("admin-email", "", "first administrator's email")
	pw := fs.String("admin-password", "", "first administrator's password (at least 8 characters)")
	adminName := fs.String("admin-name", "", "first administrator's name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *email == "" || *pw == "" {
		return fmt.Errorf("bootstrap needs --clinic, --admin-email and --admin-password; %w", errUsage)
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: *name, AdminEmail: *email, AdminName: *adminName, AdminPassword: *pw})
	if err != nil {
		return err
	}
	if res.Created {
		fmt.Fprintf(out, "clinic %s created with administrator %s\n", res.ClinicID, strings.ToLower(strings.TrimSpace(*email)))
	} else {
		fmt.Fprintf(out, "clinic %s already bootstrapped; nothing changed\n", res.ClinicID)
	}
	return nil
}

func staffAdd(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	fs := flag.NewFlagSet("staff add", flag.ContinueOnError)
	email := fs.String("email", "", "email")
	role := fs.String("role", "", "admin, staff, billing or auditor")
	name := fs.String("name", "", "name")
	pw := fs.String("password", "", "initial password; one is generated and printed when left out")
	clinicFlag := fs.String("clinic-id", "", "clinic id; may be left out when there is one clinic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" || *role == "" {
		return fmt.Errorf("staff add needs --email and --role; %w", errUsage)
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	clinicID, err := pickClinic(ctx, a.Store, *clinicFlag)
	if err != nil {
		return err
	}
	generated := *pw == ""
	if generated {
		b := make([]byte, 15)
		_, _ = rand.Read(b)
		*pw = base64.RawURLEncoding.EncodeToString(b)
	}
	id, err := a.Commands.AddStaffMember(ctx, commands.Meta{Actor: commands.System("portalctl")}, commands.AddStaffMember{
		ClinicID: clinicID, Email: *email, Name: *name, Role: staff.Role(*role), Password: *pw,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "staff account %s added\n", id)
	if generated {
		fmt.Fprintf(out, "initial password (shown once): %s\n", *pw)
	}
	return nil
}

// pickClinic reads the clinics from the event log: an operator tool must
// work before any read model exists.
func pickClinic(ctx context.Context, store eventstore.Store, flagValue string) (uuid.UUID, error) {
	if flagValue != "" {
		return uuid.Parse(flagValue)
	}
	var found []uuid.UUID
	after := eventstore.Start
	for {
		page, err := store.ReadAll(ctx, after, 500, eventstore.Filter{Categories: []string{clinic.Category}})
		if err != nil {
			return uuid.Nil, err
		}
		for _, e := range page {
			if e.Type == (clinic.Registered{}).EventType() {
				ev, err := domain.Decode(e.Type, e.Data)
				if err != nil {
					return uuid.Nil, err
				}
				found = append(found, ev.(clinic.Registered).ClinicID)
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Position
	}
	switch len(found) {
	case 0:
		return uuid.Nil, errors.New("no clinic yet: run `portalctl bootstrap` first")
	case 1:
		return found[0], nil
	}
	return uuid.Nil, fmt.Errorf("%d clinics: name one with --clinic-id", len(found))
}
