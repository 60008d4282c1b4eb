package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/pgdb"
)

// benchPrefix guards the drop: portalbench only ever drops a database whose
// name says it is a benchmark's.
const benchPrefix = "portico_bench"

// databaseName is the database a URL names, checked against benchPrefix.
func databaseName(databaseURL string) (string, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return "", fmt.Errorf("-database-url: %w", err)
	}
	name := cfg.Database
	if !strings.HasPrefix(name, benchPrefix) {
		return "", fmt.Errorf("-database-url names database %q: portalbench drops and recreates its database, so it only uses one whose name starts with %q", name, benchPrefix)
	}
	return name, nil
}

// reachable turns "Postgres is not there" into a message that says so.
func reachable(err error, databaseURL string) error {
	if err == nil {
		return nil
	}
	var netErr *net.OpError
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || errors.Is(err, context.DeadlineExceeded) {
		host := databaseURL
		if cfg, perr := pgx.ParseConfig(databaseURL); perr == nil {
			host = fmt.Sprintf("%s:%d (user %s)", cfg.Host, cfg.Port, cfg.User)
		}
		return fmt.Errorf("cannot reach Postgres at %s: is it running, and is -database-url right?\n  %w", host, err)
	}
	return err
}

// resetDatabase drops and recreates the benchmark database, so a run starts
// from an empty log.
func resetDatabase(ctx context.Context, databaseURL string) error {
	name, err := databaseName(databaseURL)
	if err != nil {
		return err
	}
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(connectCtx, pgdb.WithDatabase(databaseURL, "postgres"))
	if err != nil {
		return reachable(fmt.Errorf("connect to the postgres database to recreate %q: %w", name, err), databaseURL)
	}
	defer admin.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", ident, err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create database %s: %w", ident, err)
	}
	return nil
}

// peer is one simulated portald process: its own pool and its own store,
// hence its own group committer.
type peer struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
}

func openPeer(ctx context.Context, databaseURL string) (*peer, error) {
	pool, err := pgdb.Open(ctx, databaseURL)
	if err != nil {
		return nil, reachable(err, databaseURL)
	}
	store, err := pgstore.Open(ctx, pool, pgstore.Config{})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &peer{pool: pool, store: store}, nil
}

func (p *peer) Close() {
	p.store.Close()
	p.pool.Close()
}

// Env is what a reader needs to reproduce a result.
type Env struct {
	GoVersion       string            `json:"go_version"`
	GOOS            string            `json:"goos"`
	GOARCH          string            `json:"goarch"`
	NumCPU          int               `json:"num_cpu"`
	GOMAXPROCS      int               `json:"gomaxprocs"`
	MemTotalGiB     float64           `json:"mem_total_gib,omitempty"`
	PostgresVersion string            `json:"postgres_version"`
	PostgresSetting map[string]string `json:"postgres_settings"`
	Database        string            `json:"database"`
	StartedAt       time.Time         `json:"started_at"`
}

// settingNames are the server settings that move commit latency the most.
var settingNames = []string{
	"synchronous_commit", "fsync", "wal_sync_method", "full_page_writes",
	"commit_delay", "commit_siblings", "wal_level", "shared_buffers", "max_wal_size",
	"autovacuum", "plan_cache_mode",
}

func environment(ctx context.Context, pool *pgxpool.Pool, database string) (Env, error) {
	env := Env{
		GoVersion:       runtime.Version(),
		GOOS:            runtime.GOOS,
		GOARCH:          runtime.GOARCH,
		NumCPU:          runtime.NumCPU(),
		GOMAXPROCS:      runtime.GOMAXPROCS(0),
		MemTotalGiB:     memTotalGiB(),
		PostgresSetting: map[string]string{},
		Database:        database,
		StartedAt:       time.Now().UTC().Truncate(time.Second),
	}
	if err := pool.QueryRow(ctx, `SELECT current_setting('server_version')`).Scan(&env.PostgresVersion); err != nil {
		return env, fmt.Errorf("read server version: %w", err)
	}
	rows, err := pool.Query(ctx, `SELECT n, current_setting(n) FROM unnest($1::text[]) AS n`, settingNames)
	if err != nil {
		return env, fmt.Errorf("read server settings: %w", err)
	}
	var name, value string
	if _, err := pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		env.PostgresSetting[name] = value
		return nil
	}); err != nil {
		return env, fmt.Errorf("read server settings: %w", err)
	}
	return env, nil
}

func memTotalGiB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kib, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return 0
			}
			return float64(int(kib/1024/1024*10+0.5)) / 10
		}
	}
	return 0
}

func (e Env) print() {
	fmt.Printf("go          %s %s/%s, GOMAXPROCS=%d, NumCPU=%d", e.GoVersion, e.GOOS, e.GOARCH, e.GOMAXPROCS, e.NumCPU)
	if e.MemTotalGiB > 0 {
		fmt.Printf(", %.1f GiB RAM", e.MemTotalGiB)
	}
	fmt.Println()
	fmt.Printf("postgres    %s, database %s\n", e.PostgresVersion, e.Database)
	var parts []string
	for _, n := range settingNames {
		if v, ok := e.PostgresSetting[n]; ok {
			parts = append(parts, n+"="+v)
		}
	}
	fmt.Printf("settings    %s\n", strings.Join(parts, " "))
}
