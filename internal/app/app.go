// Package app wires a Portico process together from its configuration: the
// database and its migrations, the event store the configuration names, and
// the command handlers. portald, portalctl and the end-to-end tests share it.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/esdbstore"
	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/blobstore"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/linktoken"
	"github.com/portico-health/portico/internal/mail"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/internal/schema"
	"github.com/portico-health/portico/internal/stripepay"
	"github.com/portico-health/portico/projections"
	"github.com/portico-health/portico/projections/activities"
	"github.com/portico-health/portico/projections/appointments"
	"github.com/portico-health/portico/projections/audittrail"
	"github.com/portico-health/portico/projections/billing"
	"github.com/portico-health/portico/projections/documents"
	"github.com/portico-health/portico/projections/intakeforms"
	"github.com/portico-health/portico/projections/mailer"
	"github.com/portico-health/portico/projections/patienthistory"
	"github.com/portico-health/portico/projections/patients"
	"github.com/portico-health/portico/projections/portalusers"
)

// App is an opened Portico.
type App struct {
	Config   config.Config
	Pool     *pgxpool.Pool
	Store    eventstore.Store
	Commands *commands.Handlers
	Engine   *projections.Engine
	Logger   *slog.Logger
	// Audit records every PHI access in this process's chain.
	Audit *phiaudit.Recorder
	// Blobs keeps uploaded files: on disk under PORTAL_BLOB_DIR, else in
	// the database (blobs.go).
	Blobs blobstore.Store
	// Stripe is the card payment processor (PORTAL_STRIPE_SECRET_KEY); nil
	// when none is configured.
	Stripe *stripepay.Client
	// Clock is the clock Open was given (nil: the system clock), for the
	// API's sessions.
	Clock func() time.Time
}

// ReadModels are every read model Portico keeps, in the order they are set
// up. Side-effect handlers (the mailer) run on the same engine but are not
// read models: they are never rebuilt.
func ReadModels() []projections.Projection {
	return []projections.Projection{patients.Projection{}, portalusers.Projection{}, audittrail.Projection{}, patienthistory.Projection{}, appointments.Projection{}, documents.Projection{}, activities.Projection{}, intakeforms.Projection{}, billing.Projection{}}
}

// Option changes how Open wires the process; tests use them.
type Option func(*options)

type options struct {
	clock  func() time.Time
	sender mail.Sender
	logger *slog.Logger
}

// WithLogger replaces the logger Open was given.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock of commands, sessions and the mailer.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithMailSender replaces the sender PORTAL_SMTP_URL would give.
func WithMailSender(s mail.Sender) Option { return func(o *options) { o.sender = s } }

// Open connects to the database (creating it if missing), applies
// migrations, and opens the configured event store.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger != nil {
		logger = o.logger
	}
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := pgdb.Migrate(ctx, pool, schema.Migrations()); err != nil {
		pool.Close()
		return nil, err
	}
	if cfg.TokenKey == "" {
		logger.Warn("PORTAL_TOKEN_KEY is unset: the key of emailed links is kept in the database, so a dump of it opens pending links; set PORTAL_TOKEN_KEY in production (docs/security.md)")
	}
	keys, err := linkKeys(ctx, cfg, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	blobs, err := openBlobs(cfg, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	sender := o.sender
	if sender == nil {
		if cfg.SMTPURL == "" {
			sender = mail.NewLog(logger)
		} else if sender, err = mail.NewSMTP(cfg.SMTPURL, cfg.EmailFrom); err != nil {
			pool.Close()
			return nil, err
		}
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
	var stripeClient *stripepay.Client
	cmdOpts := []commands.Option{commands.WithClock(o.clock), commands.WithLinkKeys(keys)}
	if cfg.StripeSecretKey != "" {
		if stripeClient, err = stripepay.New(stripepay.Config{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookKey,
			APIBase: cfg.StripeAPIBase, Logger: logger}); err != nil {
			_ = store.Close()
			pool.Close()
			return nil, err
		}
		cmdOpts = append(cmdOpts, commands.WithCardPayments(stripeClient))
	}
	cmds := commands.New(store, pool, cmdOpts...)
	handlers := append(ReadModels(), &mailer.Mailer{Commands: cmds, Sender: sender, PublicURL: cfg.PublicURL})
	engine, err := projections.New(projections.Config{Pool: pool, Store: store, Logger: logger}, handlers...)
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
		Commands: cmds,
		Engine:   engine,
		Logger:   logger,
		Clock:    o.clock,
		Blobs:    blobs,
		Stripe:   stripeClient,
		Audit:    phiaudit.NewRecorder(store, cfg.InstanceName, logger),
	}, nil
}

// linkKeys are the keys of emailed links: PORTAL_TOKEN_KEY, or the key kept
// in the database when it is unset.
func linkKeys(ctx context.Context, cfg config.Config, pool *pgxpool.Pool) (*linktoken.Keys, error) {
	var key []byte
	var err error
	if cfg.TokenKey != "" {
		key, err = linktoken.ParseKey(cfg.TokenKey)
	} else {
		key, err = linktoken.Stored(ctx, pool)
	}
	if err != nil {
		return nil, err
	}
	return linktoken.New(key)
}

// Close releases the event store and the database.
func (a *App) Close() {
	a.Audit.Close()
	_ = a.Store.Close()
	a.Pool.Close()
}
