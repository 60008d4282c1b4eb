package commands

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// credentials is the password hash table (internal/schema). Hashes never
// enter the event log.
type credentials struct{ pool *pgxpool.Pool }

// setIfAbsent stores a hash unless the account has one: a re-run of a
// bootstrap or a retried command never changes a password already set.
func (c *credentials) setIfAbsent(ctx context.Context, account uuid.UUID, hash string) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO credentials (account_id, password_hash) VALUES ($1, $2) ON CONFLICT (account_id) DO NOTHING`, account, hash)
	return err
}
