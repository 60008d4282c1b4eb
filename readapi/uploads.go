package readapi

// Uploads: a multipart/form-data request is read whole and checked before
// anything is stored. The file must fit the size limit (413
// file_too_large) and be, by its content and whatever its name, of an
// accepted media type (415 unsupported_media_type); an upload cut off
// midway is 400 upload_incomplete. Any of these stores nothing.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/internal/blobstore"
)

// blobStore is where uploaded files go: Deps.Blobs, or the database.
func (s *server) blobStore() blobstore.Store {
	if s.Blobs != nil {
		return s.Blobs
	}
	return blobstore.NewPostgres(s.Pool)
}

// multipartOverhead is what a multipart body may carry beyond its file:
// boundaries, part headers and the short text fields.
const multipartOverhead = 64 << 10

// maxTextField is the longest text field of an upload form, in bytes.
const maxTextField = 4 << 10

// uploadForm is a multipart/form-data request read whole: its text fields
// and its one file, checked but not yet stored.
type uploadForm struct {
	Fields map[string]string
	File   blobstore.Upload
}

// readUpload reads a multipart/form-data body with one file part named
// fileField and the text fields named. Other parts are read and ignored.
// On a refusal it has answered the request and says false.
func (s *server) readUpload(c *gin.Context, fileField string, textFields ...string) (uploadForm, bool) {
	policy := s.Uploads
	limit := policy.Limit() + multipartOverhead
	if c.Request.ContentLength > limit {
		s.uploadFailed(c, blobstore.ErrTooLarge)
		return uploadForm{}, false
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		fail(c, domain.Invalid(map[string]string{fileField: "a multipart/form-data body with the fields " + strings.Join(append(textFields, fileField), ", ")}))
		return uploadForm{}, false
	}
	form := uploadForm{Fields: map[string]string{}}
	haveFile := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.uploadFailed(c, readError(err))
			return uploadForm{}, false
		}
		name := part.FormName()
		switch {
		case name == fileField:
			if haveFile {
				fail(c, domain.Invalid(map[string]string{fileField: "one file"}))
				return uploadForm{}, false
			}
			up, err := policy.Receive(part, part.FileName())
			if err != nil {
				s.uploadFailed(c, err)
				return uploadForm{}, false
			}
			form.File, haveFile = up, true
		case slices.Contains(textFields, name):
			v, err := io.ReadAll(io.LimitReader(part, maxTextField+1))
			if err != nil {
				s.uploadFailed(c, readError(err))
				return uploadForm{}, false
			}
			if len(v) > maxTextField {
				fail(c, domain.Invalid(map[string]string{name: fmt.Sprintf("at most %d bytes", maxTextField)}))
				return uploadForm{}, false
			}
			form.Fields[name] = string(v)
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				s.uploadFailed(c, readError(err))
				return uploadForm{}, false
			}
		}
		_ = part.Close()
	}
	if !haveFile {
		fail(c, domain.Invalid(map[string]string{fileField: "a file is required"}))
		return uploadForm{}, false
	}
	return form, true
}

// readError classifies a failure to read the request body.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return blobstore.ErrTooLarge
	}
	return fmt.Errorf("%w: %v", blobstore.ErrIncomplete, err)
}

// uploadFailed answers a refused upload with its problem.
func (s *server) uploadFailed(c *gin.Context, err error) {
	switch {
	case errors.Is(err, blobstore.ErrTooLarge):
		abortProblem(c, http.StatusRequestEntityTooLarge, "file_too_large",
			fmt.Sprintf("the file is larger than the limit of %s", humanBytes(s.Uploads.Limit())))
	case errors.Is(err, blobstore.ErrUnsupportedType):
		abortProblem(c, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"the file's content is not of an accepted type ("+acceptedNames(s.Uploads.Accepts())+"); its name and declared type do not count")
	case errors.Is(err, blobstore.ErrEmpty):
		fail(c, domain.Invalid(map[string]string{"file": "a file with content"}))
	case errors.Is(err, blobstore.ErrIncomplete):
		abortProblem(c, http.StatusBadRequest, "upload_incomplete", "the upload ended before the file was complete; nothing was stored, send it again")
	default:
		fail(c, err)
	}
}

func humanBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func acceptedNames(types []string) string {
	names := map[string]string{blobstore.PDF: "PDF", blobstore.PNG: "PNG", blobstore.JPEG: "JPEG", blobstore.DOCX: "DOCX"}
	out := make([]string, len(types))
	for i, t := range types {
		if n, ok := names[t]; ok {
			out[i] = n
		} else {
			out[i] = t
		}
	}
	return strings.Join(out, ", ")
}

// fileHeaders sets the headers of a file answer only when the answer is a
// success, so a refusal written instead (audit unavailable) carries no
// file name.
type fileHeaders struct {
	gin.ResponseWriter
	headers map[string]string
}

func (w *fileHeaders) WriteHeader(code int) {
	if code >= 200 && code < 300 {
		for k, v := range w.headers {
			w.Header().Set(k, v)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// serveFileHeaders arranges the headers of an inline file answer: its name
// for saving and printing, and no sniffing of its type.
func serveFileHeaders(c *gin.Context, name string) {
	disposition := mime.FormatMediaType("inline", map[string]string{"filename": name})
	if disposition == "" {
		disposition = "inline"
	}
	c.Writer = &fileHeaders{ResponseWriter: c.Writer, headers: map[string]string{
		"Content-Disposition":    disposition,
		"X-Content-Type-Options": "nosniff",
	}}
}

// deliverStoredFile answers with a stored file, inline under its name, after
// its access record is durable (deliverPHIBytes).
func (s *server) deliverStoredFile(c *gin.Context, sha string, size int64, mediaType, name string, acc phiAccess) {
	data, err := s.readBlob(c.Request.Context(), sha, size)
	if err != nil {
		fail(c, err)
		return
	}
	serveFileHeaders(c, name)
	s.deliverPHIBytes(c, http.StatusOK, mediaType, data, acc)
}

// readBlob reads a whole stored file and checks it is the one named: its
// size and its hash.
func (s *server) readBlob(ctx context.Context, sha string, size int64) ([]byte, error) {
	rc, _, err := s.blobStore().Open(ctx, sha)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", sha, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", sha, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != size || hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("file %s: stored content does not match its address", sha)
	}
	return data, nil
}
