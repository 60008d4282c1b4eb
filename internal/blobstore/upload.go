package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Media types an upload may have by default: documents people print.
const (
	PDF  = "application/pdf"
	PNG  = "image/png"
	JPEG = "image/jpeg"
	DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
)

// DefaultMaxBytes is the default size limit of an upload (10 MiB).
const DefaultMaxBytes int64 = 10 << 20

// DefaultAllowed are the media types an upload may have by default.
var DefaultAllowed = []string{PDF, PNG, JPEG, DOCX}

// Refusals of an upload, before anything is stored.
var (
	// ErrTooLarge: the file is larger than the policy's limit.
	ErrTooLarge = errors.New("blobstore: the file is larger than allowed")
	// ErrUnsupportedType: the file's content is of no allowed media type,
	// whatever its name says.
	ErrUnsupportedType = errors.New("blobstore: the file's content is of a type that is not accepted")
	// ErrEmpty: the file has no content.
	ErrEmpty = errors.New("blobstore: the file is empty")
	// ErrIncomplete: the upload ended before the file did (a connection cut
	// midway, a body shorter than its Content-Length).
	ErrIncomplete = errors.New("blobstore: the upload ended before the file was complete")
)

// Policy is what an upload may be.
type Policy struct {
	// MaxBytes is the largest file accepted; 0 is DefaultMaxBytes.
	MaxBytes int64
	// Allowed are the media types accepted, judged by content; nil is
	// DefaultAllowed.
	Allowed []string
}

func (p Policy) max() int64 {
	if p.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return p.MaxBytes
}

// Limit is the largest file the policy accepts, in bytes.
func (p Policy) Limit() int64 { return p.max() }

// Accepts are the media types the policy accepts.
func (p Policy) Accepts() []string { return slices.Clone(p.allowed()) }

func (p Policy) allowed() []string {
	if p.Allowed == nil {
		return DefaultAllowed
	}
	return p.Allowed
}

// Upload is a file received whole and checked against a Policy, not yet
// stored.
type Upload struct {
	Data      []byte
	MediaType string
	Name      string
}

// Receive reads a whole upload (at most MaxBytes) and checks it. A refused
// upload (ErrTooLarge, ErrUnsupportedType, ErrEmpty, ErrIncomplete) leaves
// nothing anywhere: nothing is stored until Store.
func (p Policy) Receive(r io.Reader, declaredName string) (Upload, error) {
	data, err := io.ReadAll(io.LimitReader(r, p.max()+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) { // the request as a whole was too large
			return Upload{}, ErrTooLarge
		}
		return Upload{}, fmt.Errorf("%w: %v", ErrIncomplete, err)
	}
	if int64(len(data)) > p.max() {
		return Upload{}, ErrTooLarge
	}
	if len(data) == 0 {
		return Upload{}, ErrEmpty
	}
	mt := DetectMediaType(data)
	if !slices.Contains(p.allowed(), mt) {
		return Upload{}, fmt.Errorf("%w (%s)", ErrUnsupportedType, mt)
	}
	return Upload{Data: data, MediaType: mt, Name: CleanName(declaredName, mt)}, nil
}

// Store puts the upload in s.
func (u Upload) Store(ctx context.Context, s Store) (Blob, error) {
	b, err := s.Put(ctx, bytes.NewReader(u.Data), u.Name)
	if err != nil {
		return Blob{}, err
	}
	if b.MediaType != u.MediaType || b.Size != int64(len(u.Data)) {
		return Blob{}, fmt.Errorf("blobstore: stored %s as %s, %d bytes; received %s, %d bytes", b.SHA256, b.MediaType, b.Size, u.MediaType, len(u.Data))
	}
	return b, nil
}

var extensions = map[string]string{PDF: ".pdf", PNG: ".png", JPEG: ".jpg", DOCX: ".docx"}

// CleanName is a declared file name fit to keep and to send back in a
// Content-Disposition header: the last path element, without control
// characters, at most 200 bytes; "document" plus the media type's extension
// when nothing is left.
func CleanName(name, mediaType string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	name = path.Base(strings.TrimSpace(name))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 200 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == "/" || name == ".." {
		name = "document" + extensions[mediaType]
	}
	return name
}
