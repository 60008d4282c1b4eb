package blobstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres keeps blobs in the table blobs (internal/schema migration
// 00005_blobs.sql) of the application's database.
type Postgres struct {
	pool *pgxpool.Pool
}

var _ Store = (*Postgres)(nil)

// NewPostgres is a store on the database of pool, whose migrations
// (internal/schema) have run.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

// Put reads r to its end before it writes anything, so a reader that fails
// midway leaves no row.
func (s *Postgres) Put(ctx context.Context, r io.Reader, declaredName string) (Blob, error) {
	data, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return Blob{}, fmt.Errorf("blobstore: read upload: %w", err)
	}
	sum := sha256.Sum256(data)
	b := Blob{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), MediaType: DetectMediaType(data), Name: declaredName}
	// Storing known content again renews it, so that the orphan sweep never
	// takes a blob that a command about to be recorded has just uploaded.
	if _, err := s.pool.Exec(ctx, `INSERT INTO blobs (sha256, size, media_type, bytes) VALUES ($1, $2, $3, $4)
		ON CONFLICT (sha256) DO UPDATE SET stored_at = now()`, b.SHA256, b.Size, b.MediaType, data); err != nil {
		return Blob{}, fmt.Errorf("blobstore: store %s: %w", b.SHA256, err)
	}
	return b, nil
}

// Open reads the whole blob from its row.
func (s *Postgres) Open(ctx context.Context, sha string) (io.ReadCloser, Blob, error) {
	if !ValidSHA256(sha) {
		return nil, Blob{}, ErrNotFound
	}
	b := Blob{SHA256: sha}
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT size, media_type, bytes FROM blobs WHERE sha256 = $1`, sha).Scan(&b.Size, &b.MediaType, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Blob{}, ErrNotFound
	}
	if err != nil {
		return nil, Blob{}, fmt.Errorf("blobstore: open %s: %w", sha, err)
	}
	return io.NopCloser(bytes.NewReader(data)), b, nil
}

// StoredBefore lists the rows stored before cutoff.
func (s *Postgres) StoredBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT sha256 FROM blobs WHERE stored_at < $1 ORDER BY sha256`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("blobstore: list: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Remove deletes the row if it is still older than cutoff: one statement, so
// a Put that renews the blob meanwhile wins.
func (s *Postgres) Remove(ctx context.Context, sha string, cutoff time.Time) (bool, error) {
	if !ValidSHA256(sha) {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM blobs WHERE sha256 = $1 AND stored_at < $2`, sha, cutoff)
	if err != nil {
		return false, fmt.Errorf("blobstore: remove %s: %w", sha, err)
	}
	return tag.RowsAffected() == 1, nil
}
