// Package testapp opens a whole Portico (database, migrations, the Postgres
// event store, command handlers) on a fresh database for one test.
package testapp

import (
	"context"
	"log/slog"
	"testing"

	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/testpg"
)

// New opens Portico on a fresh database, closed when t ends.
func New(t testing.TB, opts ...app.Option) *app.App {
	t.Helper()
	return NewWith(t, func(*config.Config) {}, opts...)
}

// NewWith is New with the configuration changed first (PORTAL_SMTP_URL,
// PORTAL_PUBLIC_URL, …).
func NewWith(t testing.TB, configure func(*config.Config), opts ...app.Option) *app.App {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = testpg.NewURL(t)
	configure(&cfg)
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatalf("testapp: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}
