// Package app wires a Portico process together from its configuration: the
// database and its migrations, the event store the configuration names, and
// the command handlers. portald, portalctl and the end-to-end tests share it.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/esdbstore"
	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/schema"
	"github.com/portico-health/portico/projections"
	"github.com/portico-health/portico/projections/patients"
)

// App is an opened Portico.
type App struct {
	Config   config.Config
	Pool     *pgxpool.Pool
	Store    eventstore.Store
	Commands *commands.Handlers
	Engine   *projections.Engine
	Logger   *slog.Logger
}

// ReadModels are every projection Portico keeps, in the order they are set up.
func ReadModels() []projections.Projection {
	return []projections.Projection{patients.Projection{}}
}

// Open connects to the database (creating it if missing), applies
// migrations, and opens the configured event store.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := pgdb.Migrate(ctx, pool, schema.Migrations()); err != nil {
		pool.Close()
		return nil, err
	}
	var store eventstore.Store
	switch cfg.EventStore {
	case "esdb":
		store, err = esdbstore.Open(ctx, cfg.ESDBURL)
	default:
		store, err = pgstore.Open(ctx, pool, pgstore.Config{Logger: logger})
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s event store: %w", cfg.EventStore, err)
	}
	engine, err := projections.New(projections.Config{Pool: pool, Store: store, Logger: logger}, ReadModels()...)
	if err == nil {
		err = engine.Setup(ctx)
	}
	if err != nil {
		_ = store.Close()
		pool.Close()
		return nil, err
	}
	return &App{
		Config:   cfg,
		Pool:     pool,
		Store:    store,
		Commands: commands.New(store, pool),
		Engine:   engine,
		Logger:   logger,
	}, nil
}

// Close releases the event store and the database.
func (a *App) Close() {
	_ = a.Store.Close()
	a.Pool.Close()
}
