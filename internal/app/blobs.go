package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/domain/intakeform"
	"github.com/portico-health/portico/eventstore"
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

// blobCategories are the categories whose events refer to uploaded files
// (by a "sha256" field): completed documents, blank intake forms and
// returned ones. A new kind of upload adds its category here.
var blobCategories = []string{document.Category, intakeform.FormCategory, intakeform.AssignmentCategory}

// BlobSweep is what SweepBlobs found and did.
type BlobSweep struct {
	Referenced int      // files the event log refers to
	Stored     int      // files stored before the cutoff
	Orphans    []string // of those, the ones no event refers to
	Removed    int      // orphans removed (none in a dry run)
}

// SweepBlobs removes uploaded files that no event refers to and that were
// last stored more than olderThan ago: uploads whose command was then
// refused or never recorded (a crash between the two). A file any event
// ever named stays, a retracted document's included: medical records are
// kept. The files are listed first and the log read after, so an upload
// recorded meanwhile is seen; and each removal checks the age again, so a
// file uploaded again meanwhile stays.
func (a *App) SweepBlobs(ctx context.Context, olderThan time.Duration, dryRun bool) (BlobSweep, error) {
	var res BlobSweep
	if olderThan < 0 {
		return res, fmt.Errorf("blobs: --older-than must not be negative")
	}
	// The stores date files by the wall clock (Postgres's now(), file
	// times), whatever clock the commands were given.
	cutoff := time.Now().Add(-olderThan)
	stored, err := a.Blobs.StoredBefore(ctx, cutoff)
	if err != nil {
		return res, err
	}
	res.Stored = len(stored)
	referenced := map[string]bool{}
	for after := eventstore.Start; ; {
		page, err := a.Store.ReadAll(ctx, after, 1000, eventstore.Filter{Categories: blobCategories})
		if err != nil {
			return res, err
		}
		for _, e := range page {
			var v any
			if err := json.Unmarshal(e.Data, &v); err != nil {
				return res, fmt.Errorf("blobs: event %d: %w", e.Position, err)
			}
			collectSHA256(v, referenced)
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	res.Referenced = len(referenced)
	for _, sha := range stored {
		if referenced[sha] {
			continue
		}
		res.Orphans = append(res.Orphans, sha)
		if dryRun {
			continue
		}
		gone, err := a.Blobs.Remove(ctx, sha, cutoff)
		if err != nil {
			return res, err
		}
		if gone {
			res.Removed++
		}
	}
	return res, nil
}

// collectSHA256 adds every string under a "sha256" key, at any depth.
func collectSHA256(v any, into map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "sha256" {
				into[s] = true
			} else {
				collectSHA256(x, into)
			}
		}
	case []any:
		for _, x := range v {
			collectSHA256(x, into)
		}
	}
}
