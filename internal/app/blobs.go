package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// BlobSweep is what SweepBlobs found and did.
type BlobSweep struct {
	Cutoff     time.Time // files stored before this were considered
	Referenced int       // files the event log refers to
	Stored     int       // files stored before the cutoff
	Orphans    []string  // of those, the ones no event refers to
	Removed    []string  // orphans removed (none in a dry run)
}

// SweepBlobs removes uploaded files that no event refers to and that were
// last stored more than olderThan ago: uploads whose command was then
// refused or never recorded (a crash between the two). A file any event
// ever named stays, a retracted document's included: medical records are
// kept. The files are listed first and the log read after, so an upload
// recorded meanwhile is seen; and each removal checks the age again, so a
// file uploaded again meanwhile stays.
//
// It reads the whole log, not a list of categories, so that a new kind of
// upload cannot be forgotten; and it refuses to remove anything when the
// log it reads cannot be this database's (a process pointed at another or an
// empty event store would otherwise find every file an orphan): the read
// models' files must all be in it, no projection may be ahead of it, and a
// log that names no file at all removes nothing.
func (a *App) SweepBlobs(ctx context.Context, olderThan time.Duration, dryRun bool) (BlobSweep, error) {
	var res BlobSweep
	if olderThan < 0 {
		return res, fmt.Errorf("blobs: --older-than must not be negative")
	}
	// The stores date files by the wall clock (Postgres's now(), file
	// times), whatever clock the commands were given.
	cutoff := time.Now().Add(-olderThan)
	res.Cutoff = cutoff
	stored, err := a.Blobs.StoredBefore(ctx, cutoff)
	if err != nil {
		return res, err
	}
	res.Stored = len(stored)
	referenced := map[string]bool{}
	var head eventstore.Position
	for after := eventstore.Start; ; {
		page, err := a.Store.ReadAll(ctx, after, 1000, eventstore.Filter{})
		if err != nil {
			return res, err
		}
		for _, e := range page {
			if bytes.Contains(e.Data, []byte(`"sha256"`)) {
				var v any
				if err := json.Unmarshal(e.Data, &v); err != nil {
					return res, fmt.Errorf("blobs: event %d: %w", e.Position, err)
				}
				collectSHA256(v, referenced)
			}
			head = e.Position
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	res.Referenced = len(referenced)
	if err := a.sameLog(ctx, referenced, head); err != nil {
		return res, err
	}
	if len(referenced) == 0 && len(stored) > 0 && !dryRun {
		return res, fmt.Errorf("blobs: the event log names no file at all while %d are stored; check PORTAL_EVENTSTORE and its URL (a --dry-run lists them)", len(stored))
	}
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
			res.Removed = append(res.Removed, sha)
			a.Logger.Info("removed an uploaded file no event refers to", "sha256", sha)
		}
	}
	return res, nil
}

// sameLog checks that the log just read is the one this database's read
// models were projected from: every file they name is in it, and no
// projection's checkpoint is past its last event.
func (a *App) sameLog(ctx context.Context, referenced map[string]bool, head eventstore.Position) error {
	rows, err := a.Pool.Query(ctx, `SELECT file_sha256 FROM rm.documents
		UNION SELECT sha256 FROM rm.intake_forms
		UNION SELECT returned_sha256 FROM rm.intake_assignments WHERE returned_sha256 IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("blobs: read the read models' files: %w", err)
	}
	shas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("blobs: read the read models' files: %w", err)
	}
	for _, sha := range shas {
		if !referenced[sha] {
			return fmt.Errorf("blobs: the read models name file %s, which the event log does not: this is not their log (check PORTAL_EVENTSTORE and its URL); nothing removed", sha)
		}
	}
	var ahead int64
	if err := a.Pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM projection.checkpoints`).Scan(&ahead); err != nil {
		return fmt.Errorf("blobs: read the projections' checkpoints: %w", err)
	}
	if ahead > int64(head) {
		return fmt.Errorf("blobs: a projection has applied event %d but the event log ends at %d: this is not its log (check PORTAL_EVENTSTORE and its URL); nothing removed", ahead, head)
	}
	return nil
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
