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

// set stores a new hash for the account, replacing any earlier one.
func (c *credentials) set(ctx context.Context, account uuid.UUID, hash string) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO credentials (account_id, password_hash, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (account_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()`, account, hash)
	return err
}

// replace swaps an account's hash for next only if it is still old, and
// says whether it did: of a change and a reset racing, one wins.
func (c *credentials) replace(ctx context.Context, account uuid.UUID, old, next string) (bool, error) {
	tag, err := c.pool.Exec(ctx, `UPDATE credentials SET password_hash = $3, updated_at = now() WHERE account_id = $1 AND password_hash = $2`,
		account, old, next)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}
