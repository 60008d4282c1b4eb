package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/projections"
)

func projectionsCmd(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("projections: want status, rebuild NAME or retry NAME; %w", errUsage)
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	switch args[0] {
	case "status":
		st, err := a.Engine.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTION\tSTATE\tGEN\tPOSITION\tLAG EVENTS\tLAG SECONDS\tDEAD LETTERS\tSKIPPED\tCRITICAL")
		for _, s := range st {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%v\n", s.Name, s.State, s.Generation, s.Position, s.LagEvents, s.LagSeconds, s.Dead, s.Skipped, s.Critical)
		}
		return tw.Flush()
	case "rebuild":
		if len(args) != 2 {
			return fmt.Errorf("projections rebuild NAME; %w", errUsage)
		}
		last := time.Now()
		res, err := a.Engine.Rebuild(ctx, args[1], func(pos uint64, n int64) {
			if time.Since(last) > 2*time.Second {
				fmt.Fprintf(out, "  … %d events, at position %d\n", n, pos)
				last = time.Now()
			}
		})
		if err != nil {
			return err
		}
		rate := float64(res.Events) / max(res.Took.Seconds(), 1e-9)
		fmt.Fprintf(out, "%s rebuilt as generation %d from %d events in %s (%.0f events/s); readers switched\n", res.Name, res.Generation, res.Events, res.Took.Round(time.Millisecond), rate)
		return nil
	case "retry":
		if len(args) != 2 {
			return fmt.Errorf("projections retry NAME; %w", errUsage)
		}
		resolved, failed, err := a.Engine.RetryDeadLetters(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %d dead letters applied, %d still failing\n", args[1], resolved, failed)
		if failed > 0 {
			return errors.New("some dead letters still fail")
		}
		return nil
	}
	return fmt.Errorf("projections %q: want status, rebuild or retry; %w", args[0], errUsage)
}

// replayCmd prints what the portal's read models held for a patient at a
// past moment.
func replayCmd(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	asOfFlag := fs.String("as-of", "", "an RFC 3339 time or a global log position")
	patientFlag := fs.String("patient", "", "patient id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var asOf projections.AsOf
	if n, err := strconv.ParseUint(*asOfFlag, 10, 64); err == nil && n > 0 {
		asOf.Position = eventstore.Position(n)
	} else if t, err := time.Parse(time.RFC3339Nano, *asOfFlag); err == nil {
		asOf.Time = t
	} else {
		return fmt.Errorf("replay needs --as-of TIME (RFC 3339) or POSITION; %w", errUsage)
	}
	patient, err := uuid.Parse(*patientFlag)
	if err != nil {
		return fmt.Errorf("replay needs --patient ID (a UUID); %w", errUsage)
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Engine.Replay(ctx, asOf, func(ctx context.Context, tx pgx.Tx, schema string, res projections.ReplayResult) error {
		views := map[string]any{}
		for _, p := range a.Engine.Projections() {
			if ps, ok := p.(projections.PatientSnapshotter); ok {
				v, err := ps.PatientSnapshot(ctx, tx, schema, patient)
				if err != nil {
					return err
				}
				views[p.Name()] = v
			}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{
			"as_of":           *asOfFlag,
			"patient_id":      patient,
			"events_replayed": res.Events,
			"last_position":   res.Position,
			"read_models":     views,
		}); err != nil {
			return err
		}
		// What the replay shows is PHI: its access is recorded first, like
		// any read through the API, and nothing is shown if it cannot be.
		if err := recordOperatorAccess(ctx, a, uuid.Nil, audit.SubtypeRead, "portalctl replay", []uuid.UUID{patient},
			[]audit.Entity{{Type: "Patient", ID: patient}}, buf.Bytes()); err != nil {
			return err
		}
		_, err := out.Write(buf.Bytes())
		return err
	})
}
