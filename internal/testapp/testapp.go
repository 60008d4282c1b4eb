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
func New(t testing.TB) *app.App {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = testpg.NewURL(t)
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("testapp: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}
