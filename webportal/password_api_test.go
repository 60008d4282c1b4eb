package webportal_test

// "Change password" against the real API: the page sends the current and
// the new password, the API's refusals come back as plain words on the same
// form, and after a change this browser is signed in with a fresh session
// while the account's other sessions are over.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/webportal"
)

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
	signIn := func(password string) webportal.Browser {
		j := webportal.NewBrowser(t, h)
		rec := j.Form("/login", url.Values{"email": {sum.ParentEmail}, "password": {password}})
		if rec.Code != http.StatusSeeOther || !j.SignedIn() {
			t.Fatalf("sign in = %d\n%s", rec.Code, rec.Body)
		}
		return j
	}
	here, other := signIn(sum.ParentPassword), signIn(sum.ParentPassword)
	const next = "a fresh family passphrase"

	if home := here.Get("/account/password"); !strings.Contains(home.Body.String(), `href="/account/password" aria-current="page"`) {
		t.Errorf("the page is not marked in the header:\n%s", home.Body)
	}
	for _, tc := range []struct {
		current, next, again, says string
	}{
		{"not the password", next, next, "The current password is not right"},
		{sum.ParentPassword, next, next + "!", "The passwords do not match"},
		{sum.ParentPassword, "password", "password", "That password cannot be used"},
	} {
		rec := here.Form("/account/password", url.Values{"current": {tc.current}, "password": {tc.next}, "password2": {tc.again}})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.says) || !strings.Contains(rec.Body.String(), `action="/account/password"`) {
			t.Errorf("change (%q) = %d, want 400 and %q on the form again:\n%s", tc.current, rec.Code, tc.says, rec.Body)
		}
		for _, secret := range []string{tc.current, tc.next, tc.again} {
			if secret != "password" && strings.Contains(rec.Body.String(), secret) {
				t.Errorf("a refused form shows a password back: %q", secret)
			}
		}
	}

	rec := here.Form("/account/password", url.Values{"current": {sum.ParentPassword}, "password": {next}, "password2": {next}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/?m=password_changed" {
		t.Fatalf("change = %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}
	if page := here.Get("/?m=password_changed"); page.Code != http.StatusSeeOther || !strings.Contains(page.Header().Get("Location"), "m=password_changed") {
		t.Errorf("this browser is not signed in after the change: %d %v", page.Code, page.Header())
	}
	if page := other.Get("/"); page.Code != http.StatusSeeOther || page.Header().Get("Location") != "/login?m=expired" {
		t.Errorf("another browser is still signed in: %d %v", page.Code, page.Header())
	}
	signIn(next)
}
