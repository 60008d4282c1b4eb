// Command portalbench measures Portico's event store and projections on a real Postgres.
//
// It is a benchmark program, not a timed test: run it by hand on a quiet
// machine and copy what it prints into docs/performance.md.
//
//	portalbench append [flags]   closed-loop single-event appends, N writers
//	portalbench read [flags]     ReadAll throughput over the log append wrote
//	portalbench projlag [flags]  live projection lag at a steady append rate
//	portalbench rebuild [flags]  full rebuild of the patients projection over a seeded log
//	portalbench audit [flags]    portal reads over HTTP with PHI access auditing and without
//
// append drops and recreates its database (only one whose name starts with
// portico_bench) so every run starts from an empty log; read reads the log the
// last append left behind. projlag and rebuild drop and recreate databases of
// their own (portico_bench_projlag, portico_bench_rebuild).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/portico_bench?sslmode=disable"

// errInterrupted ends a run stopped by Ctrl-C after printing what was measured.
var errInterrupted = errors.New("interrupted")

func usage() {
	fmt.Fprint(os.Stderr, `usage: portalbench <command> [flags]

commands:
  append   closed-loop single-event appends to fresh streams; reports throughput and latency
  read     ReadAll throughput (events/s) over the log written by append
  projlag  live projection lag (append acknowledged -> read model updated) at a steady rate
  rebuild  seed a log of patient events, then time a full rebuild of the patients projection
  audit    portal appointment reads over HTTP, with PHI access auditing and without (benchmark-only switch)

Run "portalbench <command> -h" for a command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "append":
		err = runAppend(ctx, args)
	case "read":
		err = runRead(ctx, args)
	case "projlag":
		err = runProjlag(ctx, args)
	case "rebuild":
		err = runRebuild(ctx, args)
	case "audit":
		err = runAudit(ctx, args)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "portalbench: unknown command %q\n\n", cmd)
		usage()
		os.Exit(2)
	}
	switch {
	case err == nil:
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(os.Stderr, "portalbench: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "portalbench: %v\n", err)
		os.Exit(1)
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// logf reports progress on stderr so stdout stays the report (or the JSON).
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "portalbench: "+format+"\n", args...)
}
