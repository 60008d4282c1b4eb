package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Disk keeps blobs as files under a directory: dir/aa/bb/<sha256>, where aa
// and bb are the first two pairs of hex digits. A file is written under a
// temporary name, synced, then renamed into place, so a blob's path holds
// either nothing or the whole content.
type Disk struct {
	dir string
}

var _ Store = (*Disk)(nil)

// NewDisk is a store under dir, created (0700) if missing.
func NewDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("blobstore: no directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	d := &Disk{dir: abs}
	if err := d.recover(time.Now().Add(-staleUpload)); err != nil {
		return nil, err
	}
	return d, nil
}

// staleUpload is how old a temporary upload file must be before a start
// takes it for the leftover of a crashed Put.
const staleUpload = time.Hour

// recover tidies what a crash left in the directory: a file Remove had
// moved aside is put back (the sweep decides again next time), and the
// temporary file of a Put that never finished, which holds PHI that nothing
// refers to, is deleted once older than staleBefore.
func (d *Disk) recover(staleBefore time.Time) error {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(d.dir, name)
		switch {
		case strings.HasPrefix(name, sweepPrefix) && ValidSHA256(strings.TrimPrefix(name, sweepPrefix)):
			final := d.path(strings.TrimPrefix(name, sweepPrefix))
			if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
				return fmt.Errorf("blobstore: %w", err)
			}
			if err := os.Rename(p, final); err != nil {
				return fmt.Errorf("blobstore: put back %s: %w", name, err)
			}
		case strings.HasPrefix(name, uploadPrefix):
			if info, err := e.Info(); err == nil && info.ModTime().Before(staleBefore) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("blobstore: %w", err)
				}
			}
		}
	}
	return nil
}

const (
	uploadPrefix = ".upload-"
	sweepPrefix  = ".sweep-"
)

func (d *Disk) path(sha string) string {
	return filepath.Join(d.dir, sha[:2], sha[2:4], sha)
}

// Put streams r into a temporary file of the store's directory, hashing as
// it goes, and renames it to its address once r has ended well.
func (d *Disk) Put(ctx context.Context, r io.Reader, declaredName string) (Blob, error) {
	body, mediaType, err := sniff(ctxReader{ctx, r})
	if err != nil {
		return Blob{}, fmt.Errorf("blobstore: read upload: %w", err)
	}
	tmp, err := os.CreateTemp(d.dir, uploadPrefix+"*")
	if err != nil {
		return Blob{}, fmt.Errorf("blobstore: %w", err)
	}
	sha, n, err := writeAll(tmp, body)
	if err != nil {
		_ = os.Remove(tmp.Name())
		return Blob{}, err
	}
	final := d.path(sha)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		_ = os.Remove(tmp.Name())
		return Blob{}, fmt.Errorf("blobstore: %w", err)
	}
	// The same content under the same name: replacing it is harmless, and
	// rename is atomic, so a concurrent reader sees one whole file or the other.
	if err := os.Rename(tmp.Name(), final); err != nil {
		_ = os.Remove(tmp.Name())
		return Blob{}, fmt.Errorf("blobstore: %w", err)
	}
	return Blob{SHA256: sha, Size: n, MediaType: mediaType, Name: declaredName}, nil
}

// writeAll copies r into f, syncs and closes it, and answers the content's
// SHA-256 and size.
func writeAll(f *os.File, r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		_ = f.Close()
		return "", 0, fmt.Errorf("blobstore: read upload: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return "", 0, fmt.Errorf("blobstore: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("blobstore: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Open opens the blob's file; its media type is judged again from its
// first bytes, as Put judged it.
func (d *Disk) Open(ctx context.Context, sha string) (io.ReadCloser, Blob, error) {
	if !ValidSHA256(sha) {
		return nil, Blob{}, ErrNotFound
	}
	f, err := os.Open(d.path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, Blob{}, ErrNotFound
	}
	if err != nil {
		return nil, Blob{}, fmt.Errorf("blobstore: open %s: %w", sha, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Blob{}, fmt.Errorf("blobstore: open %s: %w", sha, err)
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		_ = f.Close()
		return nil, Blob{}, fmt.Errorf("blobstore: open %s: %w", sha, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, Blob{}, fmt.Errorf("blobstore: open %s: %w", sha, err)
	}
	return f, Blob{SHA256: sha, Size: st.Size(), MediaType: DetectMediaType(head[:n])}, nil
}

// StoredBefore walks the store's directory for blobs whose file was last
// written before cutoff (Put renames a fresh file over an existing one, so
// storing again renews it). Temporary files are not blobs.
func (d *Disk) StoredBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !ValidSHA256(e.Name()) || p != d.path(e.Name()) {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		if info.ModTime().Before(cutoff) {
			out = append(out, e.Name())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: list: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// Remove moves the file aside, checks that what it moved is still older
// than cutoff (a Put may have renamed a fresh copy over it just before), and
// deletes it; a fresh copy is put back.
func (d *Disk) Remove(_ context.Context, sha string, cutoff time.Time) (bool, error) {
	if !ValidSHA256(sha) {
		return false, nil
	}
	final := d.path(sha)
	if info, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("blobstore: remove %s: %w", sha, err)
	} else if !info.ModTime().Before(cutoff) {
		return false, nil
	}
	aside := filepath.Join(d.dir, sweepPrefix+sha)
	if err := os.Rename(final, aside); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("blobstore: remove %s: %w", sha, err)
	}
	info, err := os.Stat(aside)
	if err == nil && !info.ModTime().Before(cutoff) {
		// Stored again meanwhile: same content, so putting it back is right
		// even if yet another Put has written the address since.
		if err := os.Rename(aside, final); err != nil {
			return false, fmt.Errorf("blobstore: put back %s: %w", sha, err)
		}
		return false, nil
	}
	if err := os.Remove(aside); err != nil {
		return false, fmt.Errorf("blobstore: remove %s: %w", sha, err)
	}
	return true, nil
}
