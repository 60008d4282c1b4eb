// Package blobstore keeps uploaded files (completed documents, intake forms)
// content-addressed by their SHA-256, behind one small interface with two
// implementations: Postgres (the default: files live beside the read models
// and are backed up with them) and a directory on disk. Events never hold a
// file, only its Blob: hash, size, media type and the name it was uploaded
// under.
//
// A Store accepts any content; what an upload may be (its size, its media
// type, judged by its bytes and never by its name) is a Policy, checked
// before anything reaches a store (upload.go).
package blobstore

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"time"

	"github.com/gabriel-vasile/mimetype"
)

// Blob is a stored file.
type Blob struct {
	// SHA256 is the lower-case hex SHA-256 of the content: its address.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// MediaType is detected from the content (no parameters), never taken
	// from the name or from what the client declared.
	MediaType string `json:"media_type"`
	// Name is the file name the content was uploaded under. Stores do not
	// keep it (one content may be uploaded under many names): Open answers
	// it empty, and the event that refers to the blob holds it.
	Name string `json:"name,omitempty"`
}

// Store keeps blobs by content.
type Store interface {
	// Put stores everything r yields and answers its address. Storing the
	// same content twice stores it once. If r fails before its end, or ctx
	// ends, nothing is stored and the error is returned.
	Put(ctx context.Context, r io.Reader, declaredName string) (Blob, error)
	// Open reads a blob; ErrNotFound when no blob has that address. The
	// caller closes the reader.
	Open(ctx context.Context, sha256Hex string) (io.ReadCloser, Blob, error)
	// StoredBefore lists the addresses of blobs last stored before cutoff;
	// storing the same content again counts as storing it then. The orphan
	// sweep (app.SweepBlobs) starts from it.
	StoredBefore(ctx context.Context, cutoff time.Time) ([]string, error)
	// Remove deletes a blob unless it was stored again at or after cutoff,
	// and says whether it went. A missing blob or a malformed address is not
	// an error: nothing went.
	Remove(ctx context.Context, sha256Hex string, cutoff time.Time) (bool, error)
}

// ErrNotFound: no blob has the address (or it is no address at all).
var ErrNotFound = errors.New("blobstore: no such blob")

// ValidSHA256 reports whether s is a lower-case hex SHA-256, the only form
// an address takes (so none can name a path on disk).
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// sniffLen is how much of the start of a file the media type is judged by
// (mimetype's own read limit).
const sniffLen = 3072

// DetectMediaType is the media type of content that starts with head,
// without parameters (text/plain, not text/plain; charset=utf-8).
func DetectMediaType(head []byte) string {
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	mt := mimetype.Detect(head).String()
	if base, _, err := mime.ParseMediaType(mt); err == nil {
		return base
	}
	return mt
}

// sniff is a reader over r whose media type was judged by its first bytes.
func sniff(r io.Reader) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, sniffLen)
	head, err := br.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, "", err
	}
	return br, DetectMediaType(head), nil
}

// ctxReader fails with the context's error once ctx ends, so a Put of a
// slow upload stops when its request does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
