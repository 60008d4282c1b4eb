// Package testpg gives each test a fresh Postgres database on the real server
// (no mocks), dropped when the test ends.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/internal/pgdb"
)

// ServerURL is the server tests create their databases on:
// PORTAL_TEST_DATABASE_URL, or the local trust-auth server.
func ServerURL() string {
	if u := os.Getenv("PORTAL_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewURL creates an empty database and returns its URL. The database is
// dropped when t ends (unless PORTAL_TEST_KEEP_DB is set, for debugging).
func NewURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "portico_test_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("testpg: no Postgres at %s (start it, or set PORTAL_TEST_DATABASE_URL): %v", ServerURL(), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testpg: create database: %v", err)
	}
	t.Cleanup(func() {
		if os.Getenv("PORTAL_TEST_KEEP_DB") != "" {
			t.Logf("testpg: kept database %s", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			t.Errorf("testpg: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: drop %s: %v", name, err)
		}
	})
	return pgdb.WithDatabase(ServerURL(), name)
}

// NewPool creates a fresh database and returns a pool on it, closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.Open(context.Background(), NewURL(t))
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
