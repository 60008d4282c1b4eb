package webportal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// Browser is this package's cookie-keeping test client (portal_test.go),
// for the tests of package webportal_test that run the real API.
type Browser struct{ b *browser }

func NewBrowser(t *testing.T, h http.Handler) Browser { return Browser{newBrowser(t, h)} }

func (b Browser) Get(path string) *httptest.ResponseRecorder { return b.b.get(path) }

// Form reads the page at path and posts fields with the page's csrf token.
func (b Browser) Form(path string, fields url.Values) *httptest.ResponseRecorder {
	b.b.t.Helper()
	fields.Set(csrfField, csrfOf(b.b.t, b.b.get(path)))
	return b.b.post(path, fields)
}

// SignedIn says whether the browser holds a session cookie.
func (b Browser) SignedIn() bool { return b.b.cookies[sessionCookie] != nil }
