package webportal_test

// "Change password" against the real API: the page sends the current and
// the new password, the API's refusals come back as plain words on the same
// form, and a change keeps this browser signed in while the account's other
// sessions end.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/webportal"
)

// jar is a browser: it keeps cookies between requests.
type jar struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]*http.Cookie
}

func (j *jar) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	j.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	for _, c := range j.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	j.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(j.cookies, c.Name)
		} else {
			j.cookies[c.Name] = c
		}
	}
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// form reads the page at path and posts fields with the page's csrf token.
func (j *jar) form(path string, fields url.Values) *httptest.ResponseRecorder {
	j.t.Helper()
	page := j.do("GET", path, nil)
	m := csrfField.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || m == nil {
		j.t.Fatalf("GET %s = %d without a form:\n%s", path, page.Code, page.Body)
	}
	fields.Set("csrf", m[1])
	return j.do("POST", path, fields)
}

// demoPortal is the whole Portico (the real API, projections running)
// behind the web portal, with the demo clinic loaded.
func demoPortal(t *testing.T) (*app.App, http.Handler, demo.Summary) {
	t.Helper()
	a := testapp.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := webportal.Handler(a, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *webportal.Config) { c.Location = time.UTC })
	if err != nil {
		t.Fatal(err)
	}
	sum, err := demo.Load(context.Background(), a.Commands, a.Blobs)
	if err != nil {
		t.Fatal(err)
	}
	return a, h, sum
}

func TestChangePasswordPage(t *testing.T) {
	_, h, sum := demoPortal(t)
	signIn := func(password string) *jar {
		j := &jar{t: t, h: h, cookies: map[string]*http.Cookie{}}
		rec := j.form("/login", url.Values{"email": {sum.ParentEmail}, "password": {password}})
		if rec.Code != http.StatusSeeOther || j.cookies["portico_session"] == nil {
			t.Fatalf("sign in = %d\n%s", rec.Code, rec.Body)
		}
		return j
	}
	here, other := signIn(sum.ParentPassword), signIn(sum.ParentPassword)
	const next = "a fresh family passphrase"

	if home := here.do("GET", "/account/password", nil); !strings.Contains(home.Body.String(), `href="/account/password" aria-current="page"`) {
		t.Errorf("the page is not marked in the header:\n%s", home.Body)
	}
	for _, tc := range []struct {
		current, next, again, says string
	}{
		{"not the password", next, next, "The current password is not right"},
		{sum.ParentPassword, next, next + "!", "The passwords do not match"},
		{sum.ParentPassword, "password", "password", "That password cannot be used"},
	} {
		rec := here.form("/account/password", url.Values{"current": {tc.current}, "password": {tc.next}, "password2": {tc.again}})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.says) || !strings.Contains(rec.Body.String(), `action="/account/password"`) {
			t.Errorf("change (%q) = %d, want 400 and %q on the form again:\n%s", tc.current, rec.Code, tc.says, rec.Body)
		}
		for _, secret := range []string{tc.current, tc.next, tc.again} {
			if secret != "password" && strings.Contains(rec.Body.String(), secret) {
				t.Errorf("a refused form shows a password back: %q", secret)
			}
		}
	}

	rec := here.form("/account/password", url.Values{"current": {sum.ParentPassword}, "password": {next}, "password2": {next}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/?m=password_changed" {
		t.Fatalf("change = %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}
	if page := here.do("GET", "/?m=password_changed", nil); page.Code != http.StatusSeeOther || !strings.Contains(page.Header().Get("Location"), "m=password_changed") {
		t.Errorf("this browser is not signed in after the change: %d %v", page.Code, page.Header())
	}
	if page := other.do("GET", "/", nil); page.Code != http.StatusSeeOther || page.Header().Get("Location") != "/login?m=expired" {
		t.Errorf("another browser is still signed in: %d %v", page.Code, page.Header())
	}
	signIn(next)
}
