package app

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/internal/blobstore"
	"github.com/portico-health/portico/internal/config"
)

// openBlobs is the store of uploaded files the configuration names: a
// directory (PORTAL_BLOB_DIR) or the database.
func openBlobs(cfg config.Config, pool *pgxpool.Pool) (blobstore.Store, error) {
	if cfg.BlobDir == "" {
		return blobstore.NewPostgres(pool), nil
	}
	s, err := blobstore.NewDisk(cfg.BlobDir)
	if err != nil {
		return nil, fmt.Errorf("PORTAL_BLOB_DIR: %w", err)
	}
	return s, nil
}

// UploadPolicy is what an uploaded file may be: PORTAL_MAX_UPLOAD_BYTES,
// and the media types blobstore accepts by default.
func (a *App) UploadPolicy() blobstore.Policy {
	return blobstore.Policy{MaxBytes: a.Config.MaxUploadBytes}
}
