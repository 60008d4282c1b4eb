// Command portald is the Portico server: the HTTP API, the projections and
// the side-effect handlers, in one process by default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/logging"
	"github.com/portico-health/portico/webportal"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "portald:", err)
		os.Exit(1)
	}
}

func run() error {
	role := flag.String("role", "all", "what this process runs: api, projector or all")
	loadDemo := flag.Bool("demo", false, "load the demo clinic (idempotent) before serving")
	flag.Parse()
	switch *role {
	case "api", "projector", "all":
	default:
		return fmt.Errorf("--role %q: want api, projector or all", *role)
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.ProjectionsEnabled = *role != "api"
	logger := logging.New(os.Stderr, cfg.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()

	if *loadDemo {
		s, err := demo.Load(ctx, a.Commands, a.Blobs)
		if err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		fmt.Fprintf(os.Stderr, "\n%s\n", s.Describe(cfg.PublicURL))
		fmt.Fprintf(os.Stderr, "Open the portal: %s/login (sign in as the parent above)\n\n", cfg.PublicURL)
	}

	// The API under /api/v1 with the web portal in front of it (webportal).
	handler, err := webportal.Handler(a, logger)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
	}
	projectorsDone := make(chan struct{})
	if cfg.ProjectionsEnabled {
		go func() { _ = a.Engine.Run(ctx); close(projectorsDone) }()
	} else {
		close(projectorsDone)
	}
	go a.Maintain(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("portald listening", "addr", cfg.HTTPAddr, "role", *role, "eventstore", cfg.EventStore, "instance", cfg.InstanceName)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("portald shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Projections finish the event in hand before the store and pool close.
	<-projectorsDone
	return nil
}
