package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/portico-health/portico/internal/app"
)

// blobsSweep is `portalctl blobs sweep`: app.SweepBlobs, with what it found.
func blobsSweep(ctx context.Context, open func() (*app.App, error), args []string, out io.Writer) error {
	fs := flag.NewFlagSet("blobs sweep", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	olderThan := fs.Duration("older-than", 24*time.Hour, "only files stored longer ago than this")
	dryRun := fs.Bool("dry-run", false, "list the orphans, remove nothing")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("blobs sweep [--older-than 24h] [--dry-run]; %w", errUsage)
	}
	if *olderThan < time.Hour && !*dryRun {
		// An upload is recorded within seconds; an hour leaves room for a
		// slow request, a retry and a clock that is a little off.
		return fmt.Errorf("blobs sweep: --older-than under 1h could take an upload whose command is still running; %w", errUsage)
	}
	a, err := open()
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.SweepBlobs(ctx, *olderThan, *dryRun)
	// What went is printed even when the sweep stopped midway.
	for _, sha := range res.Removed {
		fmt.Fprintln(out, "removed", sha)
	}
	if err != nil {
		return err
	}
	if *dryRun {
		for _, sha := range res.Orphans {
			fmt.Fprintln(out, "orphan", sha)
		}
	}
	removed := fmt.Sprintf("removed: %d", len(res.Removed))
	if *dryRun {
		removed = fmt.Sprintf("would remove (dry run): %d", len(res.Orphans))
	}
	fmt.Fprintf(out, "files stored before %s: %d; referenced by events: %d; orphans: %d; %s\n",
		res.Cutoff.UTC().Format(time.RFC3339), res.Stored, res.Referenced, len(res.Orphans), removed)
	return nil
}
