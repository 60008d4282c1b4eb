package readapi_test

// docs/openapi.yaml is the machine-readable contract (API.md). Here it is
// loaded and validated, and checkOpenAPI wraps the handlers of the HTTP test
// fixtures so that every response the tests see is checked against it:
// status, headers, content type and body. TestOpenAPIDescribesEveryRoute
// keeps the document and the routes of the server equal, both ways.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/projections"
	"github.com/portico-health/portico/readapi"
)

const openAPIFile = "../docs/openapi.yaml"

// notInOpenAPI are the routes the document leaves out on purpose.
var notInOpenAPI = map[string]string{
	"GET /metrics": "the Prometheus exposition format, not part of the API",
}

var (
	openAPIOnce   sync.Once
	openAPIDoc    *openapi3.T
	openAPIRouter routers.Router
	openAPIErr    error
)

// loadOpenAPI loads and validates docs/openapi.yaml once per test binary.
func loadOpenAPI(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	openAPIOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(openAPIFile)
		if err != nil {
			openAPIErr = fmt.Errorf("loading %s: %w", openAPIFile, err)
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			openAPIErr = fmt.Errorf("%s is not a valid OpenAPI document: %w", openAPIFile, err)
			return
		}
		// Formats OpenAPI leaves open, checked in responses here.
		doc.SetStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
		doc.SetStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail))
		// API.md: times are RFC 3339 in UTC.
		doc.SetStringFormatValidator("date-time", utcDateTime{})
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			openAPIErr = fmt.Errorf("routing %s: %w", openAPIFile, err)
			return
		}
		openAPIDoc, openAPIRouter = doc, router
	})
	if openAPIErr != nil {
		t.Fatal(openAPIErr)
	}
	return openAPIDoc, openAPIRouter
}

// utcDateTime accepts RFC 3339 times in UTC only ("…Z"), as API.md fixes.
type utcDateTime struct{}

func (utcDateTime) Validate(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("not an RFC 3339 time: %w", err)
	}
	if !strings.HasSuffix(v, "Z") || t.Location() != time.UTC {
		return errors.New("not in UTC (API.md: RFC 3339 UTC times)")
	}
	return nil
}

// checkOpenAPI wraps h so that every response it gives is validated against
// docs/openapi.yaml once served: a status, header, content type or body the
// document does not describe fails t, and so does a route of the server the
// document does not describe ("undocumented route"). A request for no route
// of the server at all must be answered with a 404 or 405 problem. The
// response itself passes through unchanged, as it is written.
func checkOpenAPI(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	doc, router := loadOpenAPI(t)
	var served []servedRoute
	engine, isGin := h.(*gin.Engine)
	if isGin {
		for _, r := range engine.Routes() {
			served = append(served, newServedRoute(r.Method, r.Path))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &capturingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		status, header := cw.result()
		if err := checkResponse(doc, router, served, isGin, r, status, header, cw.body.Bytes()); err != nil {
			t.Errorf("OpenAPI: %s %s answered %d, which docs/openapi.yaml does not allow: %v\nbody: %s",
				r.Method, r.URL.Path, status, err, abbreviate(cw.body.Bytes(), 600))
		}
	})
}

// checkResponse validates one served response against the document.
func checkResponse(doc *openapi3.T, router routers.Router, served []servedRoute, knowsRoutes bool,
	req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := router.FindRoute(req)
	if err != nil {
		key, isRoute := matchServed(served, req)
		if _, skip := notInOpenAPI[key]; skip {
			return nil
		}
		if isRoute || !knowsRoutes {
			return fmt.Errorf("undocumented route %s %s (%v)", req.Method, key, err)
		}
		// No route of the server: it must refuse with a problem.
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("a request for no route answered %d, want a 404 or 405 problem", status)
		}
		return checkProblem(doc, header, body)
	}

	opts := &openapi3filter.Options{
		IncludeResponseStatus:   true,
		MultiError:              true,
		SchemaValidationOptions: doc.GetSchemaValidationOptions(),
	}
	// Where and what, without the whole schema and value.
	opts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
	})
	ct := header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ct)
	isJSON := mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
	if len(body) > 0 && !isJSON {
		// Binary bodies (PDFs, files) and NDJSON exports: status, headers
		// and content type here; the body is checked below.
		opts.ExcludeResponseBody = true
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 status,
		Header:                 header,
		Options:                opts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}

	resp := route.Operation.Responses.Status(status)
	if resp == nil {
		resp = route.Operation.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return nil // ValidateResponse has refused an undocumented status
	}
	content := resp.Value.Content
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("the document gives status %d no body, but %d bytes were sent", status, len(body))
		}
		return nil
	}
	if len(body) == 0 && isJSON {
		return errors.New("an empty body where the document describes one")
	}
	if !opts.ExcludeResponseBody {
		return nil
	}
	if content.Get(ct) == nil {
		return fmt.Errorf("content type %q is not one of the document's %v", ct, slices.Sorted(maps.Keys(content)))
	}
	switch mediaType {
	case "application/x-ndjson":
		return checkNDJSON(body)
	case "application/pdf":
		if !bytes.HasPrefix(body, []byte("%PDF-")) {
			return errors.New("an application/pdf body that does not start with %PDF-")
		}
	}
	return nil
}

// checkNDJSON checks that every line of an NDJSON body is one JSON object.
func checkNDJSON(body []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			return fmt.Errorf("NDJSON line %d is empty", n)
		}
		var v map[string]any
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("NDJSON line %d is not a JSON object: %v", n, err)
		}
	}
	return sc.Err()
}

// checkProblem validates a refusal by the router (no such route, or not
// that method) against the Problem schema.
func checkProblem(doc *openapi3.T, header http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/problem+json" {
		return fmt.Errorf("content type %q, want application/problem+json", header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the problem is not JSON: %v", err)
	}
	schema := doc.Components.Schemas["Problem"]
	if schema == nil || schema.Value == nil {
		return errors.New("the document has no Problem schema")
	}
	return schema.Value.VisitJSON(v, append(doc.GetSchemaValidationOptions(), openapi3.VisitAsResponse(), openapi3.MultiErrors())...)
}

// servedRoute is a route of the Gin engine, matched like Gin matches it.
type servedRoute struct {
	key string // "METHOD /path/:param"
	re  *regexp.Regexp
}

func newServedRoute(method, path string) servedRoute {
	var pattern strings.Builder
	pattern.WriteString("^")
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		switch {
		case strings.HasPrefix(seg, ":"):
			pattern.WriteString("/[^/]+")
		case strings.HasPrefix(seg, "*"):
			pattern.WriteString("(/.*)?")
		default:
			pattern.WriteString("/" + regexp.QuoteMeta(seg))
		}
	}
	pattern.WriteString("$")
	return servedRoute{key: method + " " + path, re: regexp.MustCompile(pattern.String())}
}

// matchServed names the route of the server a request is for, if any.
func matchServed(served []servedRoute, req *http.Request) (string, bool) {
	for _, s := range served {
		method, _, _ := strings.Cut(s.key, " ")
		if method == req.Method && s.re.MatchString(req.URL.Path) {
			return s.key, true
		}
	}
	return req.Method + " " + req.URL.Path, false
}

// capturingWriter passes a response through and keeps a copy of it.
type capturingWriter struct {
	http.ResponseWriter
	mu     sync.Mutex
	status int
	header http.Header
	body   bytes.Buffer
}

func (w *capturingWriter) WriteHeader(status int) {
	w.mu.Lock()
	if w.status == 0 {
		w.status, w.header = status, w.ResponseWriter.Header().Clone()
	}
	w.mu.Unlock()
	w.ResponseWriter.WriteHeader(status)
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	if w.status == 0 {
		w.status, w.header = http.StatusOK, w.ResponseWriter.Header().Clone()
	}
	w.body.Write(b)
	w.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

func (w *capturingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *capturingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// result is the status and headers as they were sent.
func (w *capturingWriter) result() (int, http.Header) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		return http.StatusOK, w.ResponseWriter.Header().Clone()
	}
	return w.status, w.header
}

func abbreviate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ginPathToOpenAPI turns /patients/:pid into /patients/{pid}.
func ginPathToOpenAPI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPIDescribesEveryRoute compares the routes of the server with the
// operations of docs/openapi.yaml, both ways.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	// With an engine, so that every optional route is registered.
	h := readapi.New(readapi.Deps{Engine: &projections.Engine{}})
	engine, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("readapi.New returned %T, want *gin.Engine", h)
	}
	served := map[string]bool{}
	for _, r := range engine.Routes() {
		if _, skip := notInOpenAPI[r.Method+" "+r.Path]; skip {
			continue
		}
		served[r.Method+" "+ginPathToOpenAPI(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(served)) {
		if !documented[key] {
			t.Errorf("%s is served but not described in docs/openapi.yaml", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(documented)) {
		if !served[key] {
			t.Errorf("docs/openapi.yaml describes %s, which the server does not serve", key)
		}
	}
}

// recordingTB is a testing.TB whose failures are collected, not reported.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.errs
	r.errs = nil
	return out
}

// TestCheckOpenAPIFindsWhatTheDocumentDoesNotAllow checks the checker: it
// passes responses the document describes and fails the others.
func TestCheckOpenAPIFindsWhatTheDocumentDoesNotAllow(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	problem := func(c *gin.Context, status int, code string) {
		c.Header("Content-Type", "application/problem+json")
		c.AbortWithStatusJSON(status, gin.H{"type": "https://portico.dev/problems/" + code, "title": http.StatusText(status), "status": status, "code": code, "instance": c.Request.URL.Path})
	}
	var answer func(c *gin.Context)
	r := gin.New()
	r.Use(func(c *gin.Context) { c.Header("X-Correlation-ID", "0b6c3c1e-7a57-4c39-9a53-6f3c1c8f0e11"); c.Next() })
	r.NoRoute(func(c *gin.Context) { problem(c, http.StatusNotFound, "not_found") })
	r.GET("/healthz", func(c *gin.Context) { answer(c) })
	r.GET("/api/v1/undocumented", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{}) })
	r.GET("/api/v1/audit/access/export", func(c *gin.Context) { answer(c) })

	rec := &recordingTB{TB: t}
	h := checkOpenAPI(rec, r)
	cases := []struct {
		name, path string
		answer     func(c *gin.Context)
		fails      bool
	}{
		{"a documented answer", "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }, false},
		{"a value outside the enum", "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "fine"}) }, true},
		{"a required field missing", "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{}) }, true},
		{"an undocumented status", "/healthz", func(c *gin.Context) { c.JSON(http.StatusTeapot, gin.H{"status": "ok"}) }, true},
		{"an undocumented content type", "/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") }, true},
		{"an undocumented route", "/api/v1/undocumented", nil, true},
		{"no route at all, refused with a problem", "/api/v1/no-such-thing", nil, false},
		{"NDJSON lines that are JSON", "/api/v1/audit/access/export", func(c *gin.Context) {
			c.Header("Cache-Control", "no-store")
			c.Data(http.StatusOK, "application/x-ndjson", []byte("{\"resourceType\":\"AuditEvent\"}\n{\"resourceType\":\"AuditEvent\"}\n"))
		}, false},
		{"an NDJSON line that is not JSON", "/api/v1/audit/access/export", func(c *gin.Context) {
			c.Header("Cache-Control", "no-store")
			c.Data(http.StatusOK, "application/x-ndjson", []byte("{\"resourceType\":\"AuditEvent\"}\nnot json\n"))
		}, true},
		{"a required header missing", "/api/v1/audit/access/export", func(c *gin.Context) {
			c.Data(http.StatusOK, "application/x-ndjson", []byte("{}\n"))
		}, true},
		{"a problem lacking its code", "/api/v1/audit/access/export", func(c *gin.Context) {
			c.Header("Content-Type", "application/problem+json")
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"type": "https://portico.dev/problems/forbidden", "title": "Forbidden", "status": 403, "instance": "/x"})
		}, true},
	}
	for _, tc := range cases {
		answer = tc.answer
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
		failures := rec.failures()
		if tc.fails && len(failures) == 0 {
			t.Errorf("%s: passed, want a failure", tc.name)
		}
		if !tc.fails && len(failures) > 0 {
			t.Errorf("%s: failed: %v", tc.name, failures)
		}
	}
}

// TestOperationalProbesMatchTheDocument checks /healthz and /readyz, which
// the fixtures above do not call, against the document.
func TestOperationalProbesMatchTheDocument(t *testing.T) {
	var down error
	h := checkOpenAPI(t, readapi.New(readapi.Deps{Ready: []readapi.Check{
		{Name: "database", Run: func(context.Context) error { return nil }},
		{Name: "eventstore", Run: func(context.Context) error { return down }},
	}}))
	for _, want := range []struct {
		path   string
		down   error
		status int
	}{
		{"/healthz", nil, http.StatusOK},
		{"/readyz", nil, http.StatusOK},
		{"/readyz", errors.New("connection refused"), http.StatusServiceUnavailable},
		{"/api/v1/me", nil, http.StatusUnauthorized},
	} {
		down = want.down
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, want.path, nil))
		if rec.Code != want.status {
			t.Errorf("GET %s = %d, want %d", want.path, rec.Code, want.status)
		}
	}
}

// TestPortalUsersAddedByStaffMatchTheDocument adds a portal user who is not
// a contact, which no other test does, and lists it, through checkOpenAPI.
func TestPortalUsersAddedByStaffMatchTheDocument(t *testing.T) {
	a, h := portico(t)
	staff := signIn(t, a, h, "Harbor Therapy", "admin@harbor.example")
	code, body := staff.do("POST", "/api/v1/patients", map[string]any{"first_name": "Mia", "last_name": "Okafor", "date_of_birth": "2017-04-02"})
	if code != http.StatusCreated {
		t.Fatalf("register = %d %v", code, body)
	}
	pid := body["id"].(string)
	code, body = staff.do("POST", "/api/v1/patients/"+pid+"/portal-users",
		map[string]any{"name": "Grace Okafor", "email": "grace@family.example", "relationship": "grandparent", "permissions": []string{"documents"}},
		"Idempotency-Key", "grace")
	if code != http.StatusCreated || body["portal_user_id"] == nil {
		t.Fatalf("add portal user = %d %v", code, body)
	}
	eventually(t, "the portal user is listed", func() bool {
		_, list := staff.do("GET", "/api/v1/patients/"+pid+"/portal-users", nil)
		users, _ := list["portal_users"].([]any)
		return len(users) == 1
	})
	if code, body := staff.do("POST", "/api/v1/patients/"+pid+"/portal-users", map[string]any{"name": "", "email": "not an email"}); code != http.StatusBadRequest {
		t.Errorf("a bad portal user = %d %v, want 400", code, body)
	}
}
