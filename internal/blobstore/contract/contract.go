// Package contract is the one test suite every blobstore.Store
// implementation runs (like eventstore/contract for event stores).
package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-health/portico/internal/blobstore"
)

// Factory opens an empty store for one test.
type Factory func(t *testing.T) blobstore.Store

// Options say how to look inside a store.
type Options struct {
	// Count, if set, counts what the store holds (rows, files), leftovers
	// of a failed Put included, so the suite can check that a failed Put
	// stored nothing.
	Count func(t *testing.T, s blobstore.Store) int
}

// Run runs the suite against stores made by newStore.
func Run(t *testing.T, newStore Factory, opts Options) {
	t.Run("PutOpenRoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("MediaTypeByContentNotName", func(t *testing.T) { testMediaType(t, newStore(t)) })
	t.Run("SameContentStoredOnce", func(t *testing.T) { testDedup(t, newStore(t), opts) })
	t.Run("MissingAndMalformedAddresses", func(t *testing.T) { testMissing(t, newStore(t)) })
	t.Run("ReaderFailingMidwayStoresNothing", func(t *testing.T) { testCutOff(t, newStore(t), opts) })
	t.Run("CancelledContextStoresNothing", func(t *testing.T) { testCancelled(t, newStore(t), opts) })
	t.Run("LargeBlob", func(t *testing.T) { testLarge(t, newStore(t)) })
	t.Run("ConcurrentPutsOfOneContent", func(t *testing.T) { testConcurrent(t, newStore(t), opts) })
	t.Run("SweepTakesOnlyWhatIsOldEnough", func(t *testing.T) { testSweep(t, newStore(t)) })
	t.Run("StoringAgainRenewsABlob", func(t *testing.T) { testRenew(t, newStore(t)) })
}

func testSweep(t *testing.T, s blobstore.Store) {
	ctx := ctxFor(t)
	a, err := s.Put(ctx, bytes.NewReader(PDF("kept")), "a.pdf")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(ctx, bytes.NewReader(PDF("swept")), "b.pdf")
	if err != nil {
		t.Fatal(err)
	}
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Minute)
	if got, err := s.StoredBefore(ctx, past); err != nil || len(got) != 0 {
		t.Fatalf("StoredBefore(an hour ago) = %v, %v; want nothing", got, err)
	}
	if gone, err := s.Remove(ctx, b.SHA256, past); err != nil || gone {
		t.Fatalf("Remove of a blob newer than the cutoff = %v, %v; want kept", gone, err)
	}
	got, err := s.StoredBefore(ctx, future)
	want := []string{a.SHA256, b.SHA256}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("StoredBefore(later) = %v, %v; want %v in order", got, err, want)
	}
	if gone, err := s.Remove(ctx, b.SHA256, future); err != nil || !gone {
		t.Fatalf("Remove = %v, %v; want removed", gone, err)
	}
	if _, _, err := s.Open(ctx, b.SHA256); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Open after Remove = %v, want ErrNotFound", err)
	}
	if data, _ := readBlob(t, s, a.SHA256); !bytes.Equal(data, PDF("kept")) {
		t.Errorf("Remove of one blob touched another")
	}
	for _, sha := range []string{b.SHA256, "../../etc/passwd", strings.Repeat("A", 64)} {
		if gone, err := s.Remove(ctx, sha, future); err != nil || gone {
			t.Errorf("Remove(%q) = %v, %v; want nothing removed and no error", sha, gone, err)
		}
	}
	if got, err := s.StoredBefore(ctx, future); err != nil || len(got) != 1 || got[0] != a.SHA256 {
		t.Errorf("StoredBefore after Remove = %v, %v", got, err)
	}
}

func testRenew(t *testing.T, s blobstore.Store) {
	ctx := ctxFor(t)
	in := PDF("uploaded twice")
	b, err := s.Put(ctx, bytes.NewReader(in), "first.pdf")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	between := time.Now()
	time.Sleep(20 * time.Millisecond)
	if _, err := s.Put(ctx, bytes.NewReader(in), "again.pdf"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.StoredBefore(ctx, between); err != nil || len(got) != 0 {
		t.Errorf("StoredBefore(between the two uploads) = %v, %v; want nothing: the second renewed it", got, err)
	}
	if gone, err := s.Remove(ctx, b.SHA256, between); err != nil || gone {
		t.Fatalf("Remove with a cutoff before the second upload = %v, %v; want kept", gone, err)
	}
	if data, _ := readBlob(t, s, b.SHA256); !bytes.Equal(data, in) {
		t.Error("the blob changed")
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// PDF is a small PDF file (as far as its content tells).
func PDF(text string) []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% " + text + "\ntrailer << /Root 1 0 R >>\n%%EOF\n")
}

// PNG is the start of a PNG image.
func PNG() []byte {
	return append([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'}, make([]byte, 64)...)
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readBlob(t *testing.T, s blobstore.Store, sha string) ([]byte, blobstore.Blob) {
	t.Helper()
	rc, b, err := s.Open(ctxFor(t), sha)
	if err != nil {
		t.Fatalf("open %s: %v", sha, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", sha, err)
	}
	return data, b
}

func count(t *testing.T, s blobstore.Store, opts Options) int {
	if opts.Count == nil {
		return -1
	}
	return opts.Count(t, s)
}

func testRoundTrip(t *testing.T, s blobstore.Store) {
	in := PDF("round trip é ✓")
	b, err := s.Put(ctxFor(t), bytes.NewReader(in), "evaluation.pdf")
	if err != nil {
		t.Fatal(err)
	}
	want := blobstore.Blob{SHA256: shaOf(in), Size: int64(len(in)), MediaType: blobstore.PDF, Name: "evaluation.pdf"}
	if b != want {
		t.Fatalf("Put = %+v, want %+v", b, want)
	}
	got, ob := readBlob(t, s, b.SHA256)
	if !bytes.Equal(got, in) {
		t.Fatalf("Open read %q, want %q", got, in)
	}
	if ob.SHA256 != b.SHA256 || ob.Size != b.Size || ob.MediaType != b.MediaType || ob.Name != "" {
		t.Errorf("Open blob = %+v, want %+v without a name", ob, b)
	}
}

func testMediaType(t *testing.T, s blobstore.Store) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"scan.pdf", PNG(), blobstore.PNG},
		{"notes.pdf", []byte("just some text, not a PDF at all\n"), "text/plain"},
		{"setup.pdf", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 128)...), ""},
		{"", []byte{}, "text/plain"},
	} {
		b, err := s.Put(ctxFor(t), bytes.NewReader(tc.data), tc.name)
		if err != nil {
			t.Fatalf("put %s: %v", tc.name, err)
		}
		if tc.want != "" && b.MediaType != tc.want {
			t.Errorf("%s: media type %q, want %q", tc.name, b.MediaType, tc.want)
		}
		if b.MediaType == blobstore.PDF {
			t.Errorf("%s: judged a PDF by its name", tc.name)
		}
		if _, ob := readBlob(t, s, b.SHA256); ob.MediaType != b.MediaType {
			t.Errorf("%s: Open says %q, Put said %q", tc.name, ob.MediaType, b.MediaType)
		}
	}
}

func testDedup(t *testing.T, s blobstore.Store, opts Options) {
	in := PDF("twice")
	a, err := s.Put(ctxFor(t), bytes.NewReader(in), "a.pdf")
	if err != nil {
		t.Fatal(err)
	}
	before := count(t, s, opts)
	b, err := s.Put(ctxFor(t), bytes.NewReader(in), "b.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != b.SHA256 || b.Name != "b.pdf" {
		t.Errorf("second Put = %+v, first %+v", b, a)
	}
	if after := count(t, s, opts); after != before {
		t.Errorf("storing the same content again: %d items, then %d", before, after)
	}
	if got, _ := readBlob(t, s, a.SHA256); !bytes.Equal(got, in) {
		t.Errorf("content changed")
	}
}

func testMissing(t *testing.T, s blobstore.Store) {
	for _, sha := range []string{
		shaOf([]byte("never stored")),
		"", "../../../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("g", 64), shaOf(nil)[:63],
	} {
		rc, _, err := s.Open(ctxFor(t), sha)
		if !errors.Is(err, blobstore.ErrNotFound) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrNotFound", sha, err)
		}
	}
}

// failing yields data, then fails as a connection cut midway does.
type failing struct {
	data []byte
	off  int
}

func (f *failing) Read(p []byte) (int, error) {
	if f.off >= len(f.data) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, f.data[f.off:])
	f.off += n
	return n, nil
}

func testCutOff(t *testing.T, s blobstore.Store, opts Options) {
	full := append(PDF("cut off"), make([]byte, 256<<10)...)
	part := full[:len(full)/2]
	before := count(t, s, opts)
	if _, err := s.Put(ctxFor(t), &failing{data: part}, "cut.pdf"); err == nil {
		t.Fatal("a Put whose reader failed succeeded")
	}
	for _, sha := range []string{shaOf(part), shaOf(full)} {
		if rc, _, err := s.Open(ctxFor(t), sha); !errors.Is(err, blobstore.ErrNotFound) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("after a failed Put, Open = %v, want ErrNotFound", err)
		}
	}
	if after := count(t, s, opts); after != before {
		t.Errorf("a failed Put left something: %d items, then %d", before, after)
	}
}

// slow yields its data a byte at a time, cancelling ctx halfway.
type slow struct {
	data   []byte
	off    int
	cancel func()
}

func (r *slow) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if r.off == len(r.data)/2 {
		r.cancel()
	}
	p[0] = r.data[r.off]
	r.off++
	return 1, nil
}

func testCancelled(t *testing.T, s blobstore.Store, opts Options) {
	data := PDF("cancelled")
	ctx, cancel := context.WithCancel(ctxFor(t))
	before := count(t, s, opts)
	if _, err := s.Put(ctx, &slow{data: data, cancel: cancel}, "c.pdf"); err == nil {
		t.Fatal("a Put whose context ended succeeded")
	}
	if rc, _, err := s.Open(ctxFor(t), shaOf(data)); !errors.Is(err, blobstore.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("after a cancelled Put, Open = %v, want ErrNotFound", err)
	}
	if after := count(t, s, opts); after != before {
		t.Errorf("a cancelled Put left something: %d items, then %d", before, after)
	}
}

func testLarge(t *testing.T, s blobstore.Store) {
	in := PDF("large")
	tail := make([]byte, 6<<20)
	_, _ = rand.Read(tail)
	in = append(in, tail...)
	b, err := s.Put(ctxFor(t), bytes.NewReader(in), "large.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if b.Size != int64(len(in)) || b.SHA256 != shaOf(in) || b.MediaType != blobstore.PDF {
		t.Fatalf("Put = %+v", b)
	}
	if got, _ := readBlob(t, s, b.SHA256); !bytes.Equal(got, in) {
		t.Fatal("the large blob came back different")
	}
}

func testConcurrent(t *testing.T, s blobstore.Store, opts Options) {
	in := PDF("at once")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.Put(ctxFor(t), bytes.NewReader(in), "x.pdf")
			if err == nil && b.SHA256 != shaOf(in) {
				err = errors.New("wrong address " + b.SHA256)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got, _ := readBlob(t, s, shaOf(in)); !bytes.Equal(got, in) {
		t.Error("content changed")
	}
	if n := count(t, s, opts); n != -1 && n != 1 {
		t.Errorf("%d items after concurrent Puts of one content, want 1", n)
	}
}
