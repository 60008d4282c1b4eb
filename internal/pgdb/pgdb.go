// Package pgdb opens Portico's Postgres database and applies migrations.
// Each owner of tables (the event store, the read models) keeps its own
// migration set and its own goose version table, so the event store can be
// used and tested alone.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// DefaultMaxConns is the pool size of a Portico process.
const DefaultMaxConns = 20

// Open connects to the database named in databaseURL, creating it first if it
// does not exist, so a newcomer's first `portald` needs no manual step.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("pgdb: database url: %w", err)
	}
	if err := ensureDatabase(ctx, withoutPoolSettings(databaseURL), cfg.ConnConfig.Database); err != nil {
		return nil, err
	}
	// pgxpool's default (4 on a 2-core machine) starves a process that
	// serves requests, appends audit records and runs a dozen projections at
	// once; pool_max_conns in the URL still wins.
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// No JIT: every statement of a Portico process is a short key or range
	// lookup, and a generic plan's estimate over a large event log passes
	// jit_above_cost however few rows it reads (a projection's lag count:
	// 0.05 ms of work behind 180 ms of compiling). jit in the URL still wins.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	// Times leave the database in UTC, whatever the process's time zone:
	// API.md promises UTC, and a read model must not depend on where it runs.
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		conn.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID, Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdb: connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgdb: connect to %s: %w", redact(databaseURL), err)
	}
	return pool, nil
}

// withoutPoolSettings drops pgxpool's own parameters (pool_max_conns, …),
// which a plain connection refuses.
func withoutPoolSettings(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.Scheme == "" {
		return databaseURL
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func ensureDatabase(ctx context.Context, databaseURL, name string) error {
	if name == "" || name == "postgres" {
		return nil
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("pgdb: connect to %s: %w", redact(databaseURL), err)
	}
	admin, err := pgx.Connect(ctx, WithDatabase(databaseURL, "postgres"))
	if err != nil {
		return fmt.Errorf("pgdb: connect to create database %q: %w", name, err)
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another process
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgdb: create database %q: %w", name, err)
	}
	return nil
}

// WithDatabase returns databaseURL pointing at another database of the same server.
func WithDatabase(databaseURL, name string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.Scheme == "" {
		// Keyword/value form: replace or add dbname.
		parts := strings.Fields(databaseURL)
		out := parts[:0]
		for _, p := range parts {
			if !strings.HasPrefix(p, "dbname=") {
				out = append(out, p)
			}
		}
		return strings.Join(append(out, "dbname="+name), " ")
	}
	u.Path = "/" + name
	return u.String()
}

// redact hides a password in a connection string before it reaches a log.
func redact(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.User == nil {
		return databaseURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Migration is one owner's migration set.
type Migration struct {
	// Name keys the goose version table (<name>_migrations) and the advisory
	// lock that keeps two processes from migrating the same set at once.
	Name string
	// FS holds the numbered goose SQL files at its root.
	FS fs.FS
}

// Migrate applies every pending migration of m.
func Migrate(ctx context.Context, pool *pgxpool.Pool, m Migration) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(crc64.Checksum([]byte("portico:"+m.Name), crc64.MakeTable(crc64.ECMA))>>1)),
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, m.FS,
		goose.WithTableName(m.Name+"_migrations"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("pgdb: migrations %s: %w", m.Name, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("pgdb: migrate %s: %w", m.Name, err)
	}
	for _, r := range results {
		slog.Debug("migration applied", "set", m.Name, "version", r.Source.Version, "took", r.Duration)
	}
	return nil
}

// Embedded is the migration set of the goose files in dir of fsys (an
// embed.FS of its owner's package).
func Embedded(name string, fsys fs.FS, dir string) Migration {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	return Migration{Name: name, FS: sub}
}
