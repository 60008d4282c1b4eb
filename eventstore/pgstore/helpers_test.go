package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/testpg"
)

// OpenTestStore opens a store with cfg on a fresh database of its own, closed
// when the test ends. The tests of package pgstore_test reach it too.
func OpenTestStore(t testing.TB, cfg Config) (*Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, testpg.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := Open(ctx, pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, pool
}
