// Command killafteraudit is Portico's API with one change, for
// TestProcessKilledAfterTheRecordKeepsIt: the moment a PHI access record is
// durable, the process kills itself with SIGKILL, before a byte of the
// response is written. It lives under testdata so that nothing but that
// test builds it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/readapi"
)

type dying struct{ inner phiaudit.Auditor }

func (d dying) Record(ctx context.Context, a audit.Access) (audit.Access, error) {
	r, err := d.inner.Record(ctx, a)
	if err != nil {
		return r, err
	}
	fmt.Printf("recorded %s\n", r.RecordID)
	_ = os.Stdout.Sync()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never answer
}

func main() {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	h := readapi.New(readapi.Deps{Pool: a.Pool, Store: a.Store, Commands: a.Commands, Audit: dying{a.Audit}})
	_ = http.Serve(ln, h)
}
