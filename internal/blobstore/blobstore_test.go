package blobstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/internal/blobstore"
	"github.com/portico-health/portico/internal/blobstore/contract"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/schema"
	"github.com/portico-health/portico/internal/testpg"
)

func TestPostgresContract(t *testing.T) {
	pools := map[blobstore.Store]*pgxpool.Pool{}
	contract.Run(t, func(t *testing.T) blobstore.Store {
		pool := testpg.NewPool(t)
		if err := pgdb.Migrate(context.Background(), pool, schema.Migrations()); err != nil {
			t.Fatal(err)
		}
		s := blobstore.NewPostgres(pool)
		pools[s] = pool
		return s
	}, contract.Options{Count: func(t *testing.T, s blobstore.Store) int {
		var n int
		if err := pools[s].QueryRow(context.Background(), `SELECT count(*) FROM blobs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}})
}

func TestDiskContract(t *testing.T) {
	dirs := map[blobstore.Store]string{}
	contract.Run(t, func(t *testing.T) blobstore.Store {
		dir := t.TempDir()
		s, err := blobstore.NewDisk(dir)
		if err != nil {
			t.Fatal(err)
		}
		dirs[s] = dir
		return s
	}, contract.Options{Count: func(t *testing.T, s blobstore.Store) int {
		n := 0
		err := filepath.WalkDir(dirs[s], func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++ // blobs and any leftover temporary file
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}})
}

func TestDiskLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := blobstore.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(context.Background(), bytes.NewReader(contract.PDF("layout")), "x.pdf")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, b.SHA256[:2], b.SHA256[2:4], b.SHA256)
	if got, err := filepath.Glob(filepath.Join(dir, "*", "*", "*")); err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("files = %v, want [%s]", got, want)
	}
}

func TestPolicy(t *testing.T) {
	p := blobstore.Policy{MaxBytes: 1 << 10}
	pdf := contract.PDF("ok")
	u, err := p.Receive(bytes.NewReader(pdf), `C:\Users\sam\scans\report "final".pdf`)
	if err != nil || u.MediaType != blobstore.PDF || !bytes.Equal(u.Data, pdf) || u.Name != "report final.pdf" {
		t.Fatalf("Receive = %+v, %v", u, err)
	}
	big := append(contract.PDF("big"), make([]byte, 1<<10)...)
	for _, tc := range []struct {
		name string
		r    io.Reader
		want error
	}{
		{"too large", bytes.NewReader(big), blobstore.ErrTooLarge},
		{"exactly the limit plus one", bytes.NewReader(append(contract.PDF(""), make([]byte, 1<<10+1-len(contract.PDF("")))...)), blobstore.ErrTooLarge},
		{"text named .pdf", strings.NewReader("hello, I am text\n"), blobstore.ErrUnsupportedType},
		{"an executable", bytes.NewReader(append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 128)...)), blobstore.ErrUnsupportedType},
		{"a zip that is no docx", bytes.NewReader([]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00")), blobstore.ErrUnsupportedType},
		{"empty", bytes.NewReader(nil), blobstore.ErrEmpty},
		{"cut off", io.MultiReader(bytes.NewReader(pdf[:10]), errReader{}), blobstore.ErrIncomplete},
		{"the whole request too large", http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(pdf)), 10), blobstore.ErrTooLarge},
	} {
		if _, err := p.Receive(tc.r, "x.pdf"); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := p.Receive(bytes.NewReader(contract.PNG()), "scan.png"); err != nil {
		t.Errorf("a PNG: %v", err)
	}
	if got := blobstore.CleanName("", blobstore.PNG); got != "document.png" {
		t.Errorf("CleanName of nothing = %q", got)
	}
	if got := blobstore.CleanName("../../etc/passwd\x00\n", blobstore.PDF); got != "passwd" {
		t.Errorf("CleanName = %q", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestDiskStartTidiesWhatACrashLeft: a file the sweep had moved aside is
// put back; a crashed upload's temporary file (PHI nothing refers to) goes
// once it is old, a recent one (an upload in progress) stays.
func TestDiskStartTidiesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	data := contract.PDF("moved aside by a sweep that crashed")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	write := func(name string, b []byte, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	write(".sweep-"+sha, data, 48*time.Hour)
	write(".upload-old", []byte("half an upload"), 2*time.Hour)
	write(".upload-new", []byte("an upload in progress"), 0)
	s, err := blobstore.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Open(context.Background(), sha)
	if err != nil {
		t.Fatalf("the file moved aside is not back: %v", err)
	}
	rc.Close()
	for name, want := range map[string]bool{".sweep-" + sha: false, ".upload-old": false, ".upload-new": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
}
