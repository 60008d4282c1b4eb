package readapi_test

// Completed documents and Clinic Options, end to end over HTTP: uploads
// checked by size and content, the portal's lists and downloads per patient
// and per grant, hidden types applied when read, and what a refusal stores
// (nothing).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/readapi"
)

func pdfFile(text string) []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% " + text + "\ntrailer << /Root 1 0 R >>\n%%EOF\n")
}

func pngFile() []byte {
	return append([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'}, make([]byte, 64)...)
}

// multipartBody is a multipart/form-data body with the fields given and a
// file part (left out when name is "").
func multipartBody(t *testing.T, fields map[string]string, name, declaredType string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if name != "" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
		h.Set("Content-Type", declaredType)
		part, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = part.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// send sends a request with a raw body and answers the whole response.
func (c client) send(method, path, contentType string, body io.Reader, contentLength int64, headers ...string) *httptest.ResponseRecorder {
	c.t.Helper()
	req := httptest.NewRequest(method, path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.ContentLength = contentLength
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	return rec
}

func decoded(rec *httptest.ResponseRecorder) map[string]any {
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return out
}

// upload posts a document of a patient.
func (c client) upload(pid, typ, title, name string, data []byte, headers ...string) (int, map[string]any) {
	c.t.Helper()
	body, ct := multipartBody(c.t, map[string]string{"type": typ, "title": title}, name, "application/pdf", data)
	rec := c.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)), headers...)
	return rec.Code, decoded(rec)
}

func (p *portal) complete(pid, typ, title, name string, data []byte) string {
	p.t.Helper()
	code, body := p.staff.upload(pid, typ, title, name, data)
	if code != http.StatusCreated {
		p.t.Fatalf("upload %s = %d %v", title, code, body)
	}
	return body["id"].(string)
}

// documentList is the portal's list of a patient's documents: the ids,
// the count, and the status.
func documentList(cl client, pid string) (int, []string, int, map[string]any) {
	code, body := cl.do("GET", "/api/v1/portal/patients/"+pid+"/documents", nil)
	var ids []string
	list, _ := body["documents"].([]any)
	for _, x := range list {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	n, _ := body["count"].(float64)
	return code, ids, int(n), body
}

func (c client) download(pid, did string) *httptest.ResponseRecorder {
	return c.send("GET", "/api/v1/portal/patients/"+pid+"/documents/"+did+"/file", "", nil, 0)
}

func (p *portal) blobCount() int {
	p.t.Helper()
	var n int
	if err := p.a.Pool.QueryRow(context.Background(), `SELECT count(*) FROM blobs`).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n
}

func (p *portal) documentEvents() int {
	p.t.Helper()
	page, err := p.a.Store.ReadAll(context.Background(), eventstore.Position(0), 10000, eventstoreFilter("document"))
	if err != nil {
		p.t.Fatal(err)
	}
	return len(page)
}

func sameIDs(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestDocumentsUploadListDownloadPerPatient(t *testing.T) {
	p := newPortal(t)
	parent, first, second := p.parentOfTwo("pat@family.example")
	evalPDF := pdfFile("Noah's evaluation")
	eval := p.complete(first, "evaluation", "Initial evaluation", "noah-eval.pdf", evalPDF)
	letter := p.complete(second, "letter", "School letter", "Emma letter ✓.png", pngFile())

	// A retried upload (same Idempotency-Key) publishes once.
	c1, b1 := p.staff.upload(first, "progress_note", "Session 1", "s1.pdf", pdfFile("s1"), "Idempotency-Key", "note-1")
	c2, b2 := p.staff.upload(first, "progress_note", "Session 1", "s1.pdf", pdfFile("s1"), "Idempotency-Key", "note-1")
	if c1 != http.StatusCreated || c2 != http.StatusCreated || b1["id"] != b2["id"] {
		t.Fatalf("retried upload = %d %v then %d %v, want one id", c1, b1, c2, b2)
	}
	note := b1["id"].(string)

	var body map[string]any
	eventually(t, "the first child's documents, newest first", func() bool {
		var c, n int
		var ids []string
		c, ids, n, body = documentList(parent, first)
		return c == http.StatusOK && n == 2 && sameIDs(ids, note, eval)
	})
	doc := body["documents"].([]any)[1].(map[string]any)
	file, _ := doc["file"].(map[string]any)
	if doc["type"] != "evaluation" || doc["title"] != "Initial evaluation" || doc["completed_at"] == nil ||
		file["name"] != "noah-eval.pdf" || file["media_type"] != "application/pdf" || file["size"] != float64(len(evalPDF)) {
		t.Errorf("document = %v", doc)
	}
	if _, leaks := doc["sha256"]; leaks {
		t.Errorf("the portal sees the file's address: %v", doc)
	}
	eventually(t, "the second child's documents", func() bool {
		c, ids, n, _ := documentList(parent, second)
		return c == http.StatusOK && n == 1 && sameIDs(ids, letter)
	})

	// The file, as uploaded, inline.
	rec := parent.download(first, eval)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), evalPDF) {
		t.Fatalf("download = %d %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != `inline; filename=noah-eval.pdf` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v", rec.Header())
	}
	rec = parent.download(second, letter)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/png" || !bytes.Equal(rec.Body.Bytes(), pngFile()) {
		t.Errorf("download of the PNG = %d %v", rec.Code, rec.Header())
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "inline; filename*=utf-8''Emma%20letter%20") {
		t.Errorf("Content-Disposition of a non-ASCII name = %q", cd)
	}

	// Without a durable access record there is no file, nor its name.
	unaudited := parent
	unaudited.h = readapi.New(readapi.Deps{Pool: p.a.Pool, Store: p.a.Store, Commands: p.a.Commands, Engine: p.a.Engine, Clock: p.clock.Now})
	if rec := unaudited.download(first, eval); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Disposition") != "" ||
		bytes.Contains(rec.Body.Bytes(), evalPDF) || code(decoded(rec)) != "audit_unavailable" {
		t.Errorf("download without the audit = %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}

	// Each child's document only under that child.
	for _, tc := range [][2]string{{first, letter}, {second, eval}, {first, uuid.NewString()}, {first, "not-an-id"}} {
		if rec := parent.download(tc[0], tc[1]); rec.Code != http.StatusNotFound {
			t.Errorf("download of %s under %s = %d, want 404", tc[1], tc[0], rec.Code)
		}
	}
	// Someone not linked, and staff through the portal route, see nothing.
	stranger, _ := p.patientWithParent("Otto", "other@family.example")
	if c, _, _, _ := documentList(parent, stranger); c != http.StatusNotFound {
		t.Errorf("an unlinked patient's documents = %d, want 404", c)
	}
	if c, _ := p.staff.do("GET", "/api/v1/portal/patients/"+first+"/documents", nil); c != http.StatusForbidden {
		t.Errorf("staff on the portal route = %d, want 403", c)
	}

	// Staff list the patient's documents; another clinic's staff cannot see
	// or publish them.
	c, staffList := p.staff.do("GET", "/api/v1/patients/"+first+"/documents", nil)
	if list, _ := staffList["documents"].([]any); c != http.StatusOK || len(list) != 2 {
		t.Errorf("staff list = %d %v", c, staffList)
	}
	other := signIn(t, p.a, p.h, "Other Clinic", "desk@other.example")
	p.secrets = append(p.secrets, other.token)
	if c, _ := other.do("GET", "/api/v1/patients/"+first+"/documents", nil); c != http.StatusNotFound {
		t.Errorf("another clinic's staff list = %d, want 404", c)
	}
	blobs := p.blobCount()
	if c, body := other.upload(first, "letter", "Sneaky", "x.pdf", pdfFile("another clinic")); c != http.StatusNotFound {
		t.Errorf("another clinic's upload = %d %v, want 404", c, body)
	}
	if c, _ := other.do("POST", "/api/v1/documents/"+eval+"/retract", nil); c != http.StatusNotFound {
		t.Errorf("another clinic's retract = %d, want 404", c)
	}
	if p.blobCount() != blobs {
		t.Error("another clinic's refused upload stored its file")
	}

	// The download is in the access trail the parent can read.
	eventually(t, "the download in the child's access log", func() bool {
		_, log := parent.do("GET", "/api/v1/portal/patients/"+first+"/access-log", nil)
		entries, _ := log["accesses"].([]any)
		for _, e := range entries {
			m := e.(map[string]any)
			if m["subtype"] == "download" && m["outcome"] == "allowed" && m["kind"] == "portal" && strings.Contains(toJSON(m["what"]), "DocumentReference") {
				return true
			}
		}
		return false
	})

	// Retracting takes it out of the list and the download; twice is once.
	for range 2 {
		if c, body := p.staff.do("POST", "/api/v1/documents/"+eval+"/retract", map[string]string{"reason": "wrong patient"}); c != http.StatusNoContent {
			t.Fatalf("retract = %d %v", c, body)
		}
	}
	eventually(t, "the retracted document leaves the list", func() bool {
		c, ids, n, _ := documentList(parent, first)
		return c == http.StatusOK && n == 1 && sameIDs(ids, note)
	})
	if rec := parent.download(first, eval); rec.Code != http.StatusNotFound {
		t.Errorf("download of a retracted document = %d, want 404", rec.Code)
	}
	if c, _ := p.staff.do("POST", "/api/v1/documents/"+uuid.NewString()+"/retract", nil); c != http.StatusNotFound {
		t.Errorf("retract of no document = %d, want 404", c)
	}
	p.assertNoSecrets()
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// staffMember adds a staff member of the clinic p.staff belongs to and
// signs them in.
func (p *portal) staffMember(email string, role staff.Role) client {
	p.t.Helper()
	_, me := p.staff.do("GET", "/api/v1/me", nil)
	clinicID, err := uuid.Parse(me["clinic_id"].(string))
	if err != nil {
		p.t.Fatalf("GET /me = %v", me)
	}
	if _, err := p.a.Commands.AddStaffMember(context.Background(), commands.Meta{Actor: commands.System("test")}, commands.AddStaffMember{
		ClinicID: clinicID, Email: email, Name: "Front Desk", Role: role, Password: "long enough password",
	}); err != nil {
		p.t.Fatal(err)
	}
	c := client{t: p.t, h: p.h}
	code, body := c.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": "long enough password"})
	if code != http.StatusOK {
		p.t.Fatalf("login = %d %v", code, body)
	}
	c.token = body["token"].(string)
	p.secrets = append(p.secrets, c.token)
	return c
}

func TestHiddenDocumentTypeDisappearsEverywhereAndComesBack(t *testing.T) {
	p := newPortal(t)
	parent, first, _ := p.parentOfTwo("lee@family.example")
	desk := p.staffMember("desk@harbor.example", staff.RoleStaff)

	// Defaults: nothing hidden, balance shown, no online payments.
	c, opts := desk.do("GET", "/api/v1/clinic/options", nil)
	if c != http.StatusOK || toJSON(opts) != `{"allow_prepayment":false,"currency":"USD","hidden_document_types":[],"payment_processing_enabled":false,"show_balance_and_invoices":true}` {
		t.Fatalf("default options = %d %v", c, opts)
	}
	eval := p.complete(first, "evaluation", "Evaluation", "eval.pdf", pdfFile("eval"))
	note := p.complete(first, "progress_note", "Session notes", "notes.pdf", pdfFile("notes"))
	eventually(t, "both documents listed", func() bool {
		c, _, n, _ := documentList(parent, first)
		return c == http.StatusOK && n == 2
	})

	// Only an administrator changes the options.
	if c, body := desk.do("PUT", "/api/v1/clinic/options", map[string]any{"hidden_document_types": []string{"progress_note"}}); c != http.StatusForbidden || code(body) != "forbidden" {
		t.Errorf("non-admin PUT = %d %v, want 403", c, body)
	}
	if c, body := p.staff.do("PUT", "/api/v1/clinic/options", map[string]any{"hidden_document_types": []string{"progress_note", "surgery"}}); c != http.StatusBadRequest || code(body) != "validation_failed" {
		t.Errorf("unknown type = %d %v, want 400", c, body)
	}
	c, opts = p.staff.do("PUT", "/api/v1/clinic/options", map[string]any{"hidden_document_types": []string{"progress_note", "progress_note"}})
	if c != http.StatusOK || toJSON(opts) != `{"allow_prepayment":false,"currency":"USD","hidden_document_types":["progress_note"],"payment_processing_enabled":false,"show_balance_and_invoices":true}` {
		t.Fatalf("PUT options = %d %v", c, opts)
	}
	if _, again := desk.do("GET", "/api/v1/clinic/options", nil); toJSON(again) != toJSON(opts) {
		t.Errorf("GET after PUT = %v, want %v", again, opts)
	}

	// Hidden from the list, the count and the download, though completed
	// before the change; and so is one completed after it.
	later := p.complete(first, "progress_note", "Session 2", "notes2.pdf", pdfFile("notes 2"))
	eventually(t, "progress notes hidden", func() bool {
		c, ids, n, _ := documentList(parent, first)
		return c == http.StatusOK && n == 1 && sameIDs(ids, eval)
	})
	for _, did := range []string{note, later} {
		if rec := parent.download(first, did); rec.Code != http.StatusNotFound {
			t.Errorf("download of a hidden type = %d, want 404", rec.Code)
		}
	}
	if rec := parent.download(first, eval); rec.Code != http.StatusOK {
		t.Errorf("download of a shown type = %d", rec.Code)
	}
	// Staff still see them, marked.
	_, staffList := p.staff.do("GET", "/api/v1/patients/"+first+"/documents", nil)
	hidden := 0
	for _, x := range staffList["documents"].([]any) {
		if x.(map[string]any)["visible_in_portal"] == false {
			hidden++
		}
	}
	if hidden != 2 {
		t.Errorf("staff list marks %d hidden, want 2: %v", hidden, staffList)
	}
	// ...and open them, each opening recorded as a download of that
	// document (a retracted one is gone for staff too: below).
	if rec := desk.send("GET", "/api/v1/patients/"+first+"/documents/"+note+"/file", "", nil, 0); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), pdfFile("notes")) {
		t.Errorf("staff file of a hidden type = %d", rec.Code)
	}
	var downloads int
	if err := p.a.Pool.QueryRow(context.Background(), `SELECT count(*) FROM eventstore.events
		WHERE category = 'phiaudit' AND data::jsonb->>'subtype' = 'download' AND data::jsonb->>'route' = 'GET /api/v1/patients/:pid/documents/:did/file'
		AND data::jsonb->'entities' @> jsonb_build_array(jsonb_build_object('id', $1::text))`, note).Scan(&downloads); err != nil || downloads != 1 {
		t.Errorf("staff downloads recorded = %d (%v), want 1", downloads, err)
	}

	// Other options leave the hidden types alone; showing the type again
	// brings every document back.
	c, opts = p.staff.do("PUT", "/api/v1/clinic/options", map[string]any{"payment_processing_enabled": true, "show_balance_and_invoices": false})
	if c != http.StatusOK || toJSON(opts) != `{"allow_prepayment":false,"currency":"USD","hidden_document_types":["progress_note"],"payment_processing_enabled":true,"show_balance_and_invoices":false}` {
		t.Fatalf("PUT other options = %d %v", c, opts)
	}
	if c, body := p.staff.do("PUT", "/api/v1/clinic/options", map[string]any{"hidden_document_types": []string{}}); c != http.StatusOK {
		t.Fatalf("show again = %d %v", c, body)
	}
	eventually(t, "progress notes back", func() bool {
		c, ids, n, _ := documentList(parent, first)
		return c == http.StatusOK && n == 3 && sameIDs(ids, later, note, eval)
	})
	if rec := parent.download(first, note); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), pdfFile("notes")) {
		t.Errorf("download after showing again = %d", rec.Code)
	}
	// Each change is an event on the clinic's stream; the same options
	// again record nothing.
	before := p.clinicOptionEvents()
	p.staff.do("PUT", "/api/v1/clinic/options", map[string]any{"hidden_document_types": []string{}})
	if after := p.clinicOptionEvents(); before != 3 || after != 3 {
		t.Errorf("ClinicOptionsChanged events = %d then %d, want 3 and 3", before, after)
	}
	if c, body := desk.do("POST", "/api/v1/documents/"+later+"/retract", map[string]any{"reason": "wrong patient"}); c != http.StatusNoContent {
		t.Fatalf("retract = %d %v", c, body)
	}
	eventually(t, "retracted document gone for staff", func() bool {
		return desk.send("GET", "/api/v1/patients/"+first+"/documents/"+later+"/file", "", nil, 0).Code == http.StatusNotFound
	})
	p.assertNoSecrets()
}

func (p *portal) clinicOptionEvents() int {
	p.t.Helper()
	page, err := p.a.Store.ReadAll(context.Background(), eventstore.Position(0), 10000, eventstoreFilter("clinic"))
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, e := range page {
		if e.Type == "ClinicOptionsChanged" {
			n++
		}
	}
	return n
}

// cutOff yields the first n bytes of data, then fails as a connection
// dropped midway does.
type cutOff struct {
	r *bytes.Reader
}

func (c cutOff) Read(p []byte) (int, error) {
	if c.r.Len() == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	return c.r.Read(p)
}

func TestRefusedUploadsStoreNothing(t *testing.T) {
	p := newPortal(t)
	pid, _ := p.patientWithParent("Ava", "ava@family.example")
	fields := map[string]string{"type": "evaluation", "title": "Evaluation"}
	big := append(pdfFile("big"), make([]byte, 10<<20)...)
	exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8"), make([]byte, 512)...)

	for _, tc := range []struct {
		name   string
		send   func() *httptest.ResponseRecorder
		status int
		code   string
	}{
		{"larger than 10 MiB", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "big.pdf", "application/pdf", big)
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)))
		}, http.StatusRequestEntityTooLarge, "file_too_large"},
		{"larger than 10 MiB, length not declared", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "big.pdf", "application/pdf", big)
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), -1)
		}, http.StatusRequestEntityTooLarge, "file_too_large"},
		{"text named .pdf", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "report.pdf", "application/pdf", []byte("I am a plain text file pretending to be a PDF.\n"))
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)))
		}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"an executable named .pdf", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "report.pdf", "application/pdf", exe)
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)))
		}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"cut off midway", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "eval.pdf", "application/pdf", append(pdfFile("cut"), make([]byte, 64<<10)...))
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, cutOff{bytes.NewReader(body[:len(body)/2])}, int64(len(body)))
		}, http.StatusBadRequest, "upload_incomplete"},
		{"an empty file", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "eval.pdf", "application/pdf", nil)
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)))
		}, http.StatusBadRequest, "validation_failed"},
		{"no file", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, fields, "", "", nil)
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)))
		}, http.StatusBadRequest, "validation_failed"},
		{"an unknown type, with a good file", func() *httptest.ResponseRecorder {
			body, ct := multipartBody(t, map[string]string{"type": "surgery_report", "title": "x"}, "eval.pdf", "application/pdf", pdfFile("ok"))
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", ct, bytes.NewReader(body), int64(len(body)))
		}, http.StatusBadRequest, "validation_failed"},
		{"JSON, not multipart", func() *httptest.ResponseRecorder {
			return p.staff.send("POST", "/api/v1/patients/"+pid+"/documents", "application/json", strings.NewReader(`{"type":"letter"}`), 17)
		}, http.StatusBadRequest, "validation_failed"},
	} {
		rec := tc.send()
		body := decoded(rec)
		if rec.Code != tc.status || code(body) != tc.code || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: %d %v, want %d %s", tc.name, rec.Code, body, tc.status, tc.code)
		}
	}
	if n := p.blobCount(); n != 0 {
		t.Errorf("refused uploads stored %d files", n)
	}
	if n := p.documentEvents(); n != 0 {
		t.Errorf("refused uploads recorded %d document events", n)
	}
	// A file of exactly the limit is accepted.
	exact := append(pdfFile("exact"), make([]byte, 10<<20-len(pdfFile("exact")))...)
	if c, body := p.staff.upload(pid, "evaluation", "Evaluation", "exact.pdf", exact); c != http.StatusCreated {
		t.Errorf("a file of exactly 10 MiB = %d %v", c, body)
	}
	if n := p.blobCount(); n != 1 {
		t.Errorf("%d files stored, want 1", n)
	}
	p.assertNoSecrets()
}

func TestDocumentsNeedTheDocumentsPermission(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Zoe", "ren@family.example")
	if c, body := p.staff.do("POST", "/api/v1/patients/"+pid+"/portal-invitations", map[string]any{"contact_id": contact, "permissions": []string{"activities", "forms"}}); c != http.StatusAccepted {
		t.Fatalf("invite = %d %v", c, body)
	}
	tok, _ := p.token("ren@family.example", 1, "/invite")
	c, body := p.accept(tok, "ren's own passphrase")
	if c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	}
	ren := p.signedIn(body)
	did := p.complete(pid, "letter", "A letter", "letter.pdf", pdfFile("letter"))
	eventually(t, "the document is projected", func() bool {
		_, list := p.staff.do("GET", "/api/v1/patients/"+pid+"/documents", nil)
		docs, _ := list["documents"].([]any)
		return len(docs) == 1
	})
	if c, _, _, body := documentList(ren, pid); c != http.StatusNotFound {
		t.Errorf("list without the documents permission = %d %v, want 404", c, body)
	}
	if rec := ren.download(pid, did); rec.Code != http.StatusNotFound {
		t.Errorf("download without the documents permission = %d, want 404", rec.Code)
	}
	// The appointments, which need no permission, are still there.
	if c, _ := ren.do("GET", "/api/v1/portal/patients/"+pid+"/appointments", nil); c != http.StatusOK {
		t.Errorf("appointments = %d, want 200", c)
	}
	p.assertNoSecrets()
}
