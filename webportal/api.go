package webportal

// The portal's one way to data: requests to the public API, served
// in-process by the API's handler. Each carries the browser's session token
// as a bearer token, and the browser's address, user agent and forwarded
// headers, so the API throttles, authorises and audits the real client.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// apiResult is the API's whole answer, buffered.
type apiResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// problem is the part of an RFC 9457 problem the portal uses.
type problem struct {
	Status int               `json:"status"`
	Code   string            `json:"code"`
	Detail string            `json:"detail"`
	Errors map[string]string `json:"errors"`
}

func (a apiResult) ok() bool { return a.Status >= 200 && a.Status < 300 }

// problem decodes the answer as a problem; an answer that is not one gets
// a code from its status.
func (a apiResult) problem() problem {
	var pr problem
	if strings.HasPrefix(a.Header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(a.Body, &pr)
	}
	if pr.Code == "" {
		switch {
		case a.Status == http.StatusNotFound:
			pr.Code = "not_found"
		case a.Status == http.StatusUnauthorized:
			pr.Code = "unauthenticated"
		case a.Status >= 500:
			pr.Code = "internal"
		default:
			pr.Code = "unexpected"
		}
	}
	pr.Status = a.Status
	return pr
}

func (a apiResult) decode(v any) error { return json.Unmarshal(a.Body, v) }

// memWriter is an in-memory http.ResponseWriter.
type memWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (m *memWriter) Header() http.Header { return m.header }
func (m *memWriter) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.body.Write(b)
}
func (m *memWriter) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
}

// call sends method path (under /api/v1) to the API for the browser's
// request r, with the session token (if any) and a body of contentType.
func (p *Portal) call(r *http.Request, method, path, token, contentType string, body []byte) apiResult {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, "/api/v1"+path, rd)
	if err != nil {
		return apiResult{Status: http.StatusInternalServerError, Header: http.Header{}}
	}
	req.Host = r.Host
	// The API sees the browser's connection: its address (and, where
	// PORTAL_TRUSTED_PROXIES says so, a proxy's X-Forwarded-For) decides
	// throttling and goes into every access record.
	req.RemoteAddr = r.RemoteAddr
	for _, h := range []string{"User-Agent", "X-Forwarded-For", "X-Real-Ip", "Accept-Language"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set("X-Correlation-ID", correlationID(r))
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if body != nil {
		req.ContentLength = int64(len(body))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := &memWriter{header: http.Header{}}
	p.cfg.API.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return apiResult{Status: w.status, Header: w.header, Body: w.body.Bytes()}
}

// getJSON is a signed-in GET.
func (p *Portal) get(r *http.Request, token, path string) apiResult {
	return p.call(r, http.MethodGet, path, token, "", nil)
}

// postJSON sends v as JSON.
func (p *Portal) postJSON(r *http.Request, token, path string, v any) apiResult {
	b, err := json.Marshal(v)
	if err != nil {
		return apiResult{Status: http.StatusInternalServerError, Header: http.Header{}}
	}
	return p.call(r, http.MethodPost, path, token, "application/json", b)
}

// jsonRaw is one field of an answer, decoded later (nil decodes nothing).
type jsonRaw json.RawMessage

func (j *jsonRaw) UnmarshalJSON(b []byte) error { *j = append((*j)[:0], b...); return nil }

func (j jsonRaw) decode(v any) error {
	if len(j) == 0 {
		return nil
	}
	return json.Unmarshal(j, v)
}
