package webportal_test

// End to end in a real browser: Debian's Chromium, headless, driven by
// chromedp, against the whole of Portico (a fresh database, projections,
// the mailer sending to a real mailpit) served exactly as portald serves it
// (webportal.Handler). Staff act through the API; the parent acts only in
// the browser.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/internal/testmail"
	"github.com/portico-health/portico/internal/testproc"
	"github.com/portico-health/portico/webportal"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// chromium finds Debian's Chromium (or PORTICO_CHROMIUM). Without one the
// test skips, saying why, unless CI asks for every end-to-end test
// (PORTICO_REQUIRE_MAILPIT=1 or CI=true): then it fails.
func chromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("PORTICO_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"}
	if p, err := exec.LookPath("chromium"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c
		}
	}
	const why = "no Chromium at /usr/bin/chromium (install it with: apt-get install -y chromium; or set PORTICO_CHROMIUM)"
	if testproc.Required() {
		t.Fatalf("webportal e2e: %s; required because CI=true or PORTICO_REQUIRE_MAILPIT=1", why)
	}
	t.Skipf("webportal e2e: skipped: %s", why)
	return ""
}

// artifacts is where screenshots go: $PORTICO_ARTIFACTS/screenshots, else
// the repository's artifacts/screenshots (gitignored).
func artifacts(t *testing.T) string {
	t.Helper()
	base := os.Getenv("PORTICO_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "artifacts")
	}
	dir := filepath.Join(base, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// staff is a staff member calling the API over HTTP.
type staff struct {
	t     *testing.T
	base  string
	token string
}

func (s staff) send(method, path, contentType string, body io.Reader) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (s staff) do(method, path string, v any) map[string]any {
	s.t.Helper()
	b, _ := json.Marshal(v)
	code, out := s.send(method, path, "application/json", bytes.NewReader(b))
	if code >= 300 {
		s.t.Fatalf("%s %s = %d %v", method, path, code, out)
	}
	return out
}

func (s staff) upload(path string, fields map[string]string, name string, data []byte) map[string]any {
	s.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = w.Close()
	code, out := s.send("POST", path, w.FormDataContentType(), &buf)
	if code != http.StatusCreated {
		s.t.Fatalf("upload %s = %d %v", path, code, out)
	}
	return out
}

func pdf(text string) []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% " + text + "\ntrailer << /Root 1 0 R >>\n%%EOF\n")
}

func TestPortalInABrowser(t *testing.T) {
	chrome := chromium(t)
	started := time.Now()
	mp := testmail.Start(t)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	logs := &testproc.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// The server's address is the portal's public URL, so the emailed links
	// point at it.
	var handler http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	a := testapp.NewWith(t, func(c *config.Config) {
		c.SMTPURL = mp.SMTPURL()
		c.PublicURL = srv.URL
	}, app.WithClock(clock.Now), app.WithLogger(logger))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := webportal.Handler(a, logger, func(c *webportal.Config) { c.Location = time.UTC })
	if err != nil {
		t.Fatal(err)
	}
	handler = h

	// Staff: a clinic, two children with one parent, an appointment and a
	// document for the first, an intake form for the second.
	if _, err := a.Commands.Bootstrap(context.Background(), commands.Bootstrap{ClinicName: "Harbor Therapy", AdminEmail: "admin@harbor.example", AdminPassword: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	st := staff{t: t, base: srv.URL}
	st.token = st.do("POST", "/api/v1/auth/login", map[string]string{"email": "admin@harbor.example", "password": "long enough password"})["token"].(string)
	const parentEmail = "sam@family.example"
	child := func(first, email string) (pid, contact string) {
		pid = st.do("POST", "/api/v1/patients", map[string]string{"first_name": first, "last_name": "Rivera", "date_of_birth": "2018-05-01"})["id"].(string)
		contact = st.do("POST", "/api/v1/patients/"+pid+"/contacts", map[string]string{"name": "Sam Rivera", "relationship": "parent", "email": email})["id"].(string)
		return pid, contact
	}
	mia, miaContact := child("Mia", parentEmail)
	leo, leoContact := child("Leo", parentEmail)
	starts := clock.Now().Add(48 * time.Hour).Truncate(time.Hour)
	st.do("POST", "/api/v1/patients/"+mia+"/appointments", map[string]any{
		"starts_at": starts, "ends_at": starts.Add(45 * time.Minute), "provider": "Dr. Lane", "location": "Room 1", "kind": "therapy"})
	plan := pdf("Mia's treatment plan")
	st.upload("/api/v1/patients/"+mia+"/documents", map[string]string{"type": "treatment_plan", "title": "Treatment plan"}, "mia-plan.pdf", plan)
	formID := st.upload("/api/v1/intake-forms", map[string]string{"name": "Developmental history"}, "history.pdf", pdf("blank form"))["id"].(string)
	st.do("POST", "/api/v1/patients/"+leo+"/intake-forms", map[string]any{"form_id": formID, "message": "Please return it before the first visit."})

	link := func(to string, n int, path string) string {
		t.Helper()
		msgs := mp.WaitFor(t, to, n, 20*time.Second)
		return testmail.Link(t, msgs[n-1], srv.URL+path+"?token=")
	}
	secrets := []string{"long enough password", st.token}

	// The browser.
	downloads := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	bctx, tcancel := context.WithTimeout(bctx, 90*time.Second)
	defer tcancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// waitPage waits until the page at path (if given) has the heading h1.
	waitPage := func(what, path, h1 string) {
		t.Helper()
		js := fmt.Sprintf(`document.readyState === "complete" && !!document.querySelector("h1") && document.querySelector("h1").textContent.trim() === %q`, h1)
		if path != "" {
			js += fmt.Sprintf(` && location.pathname === %q`, path)
		}
		// Evaluated again and again: a navigation in progress makes one
		// evaluation fail, and the next one sees the new page.
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var ok bool
			if ok, err = chromedp.Run(bctx, chromedp.Evaluate[bool](js)); err == nil && ok {
				return
			}
		}
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: never reached %q %q (at %s): %v\n%s", what, path, h1, strings.TrimPrefix(loc, srv.URL), err, body)
	}
	shots := artifacts(t)
	shot := func(name string) {
		t.Helper()
		for _, width := range []int64{360, 1280} {
			run("viewport", chromedp.EmulateViewport(width, 800))
			overflow, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if overflow {
				t.Errorf("%s is wider than a %d px screen", name, width)
			}
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run("desktop again", chromedp.EmulateViewport(1280, 900))
	}
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatalf("downloads: %v", err)
	}

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	fill := func(sel, v string) chromedp.Action[chromedp.Void] { return chromedp.SendKeys(css(sel), v) }

	// 1. The invitation for Mia: the link opens the portal, which shows the
	// password rules; setting a password signs in.
	st.do("POST", "/api/v1/patients/"+mia+"/portal-invitations", map[string]any{"contact_id": miaContact})
	invite := link(parentEmail, 1, "/invite")
	secrets = append(secrets, strings.SplitN(invite, "token=", 2)[1])
	const pw = "a family passphrase"
	secrets = append(secrets, pw)
	run("open the invitation", chromedp.Navigate(invite))
	waitPage("the invitation", "/invite", "Create your password")
	if rules := text("#rules"); !strings.Contains(rules, "at least 8 characters") || !strings.Contains(rules, "common password") {
		t.Errorf("the invitation page does not show the password rules: %q", rules)
	}
	shot("invite")
	run("set a password", fill("#password", pw), fill("#password2", pw), chromedp.Submit(css("#password")))
	waitPage("after accepting", "/patients/"+mia, "Mia Rivera")

	// 2. The invitation for Leo goes to the same account: its link asks for
	// the password the account has.
	st.do("POST", "/api/v1/patients/"+leo+"/portal-invitations", map[string]any{"contact_id": leoContact})
	invite2 := link(parentEmail, 2, "/invite")
	secrets = append(secrets, strings.SplitN(invite2, "token=", 2)[1])
	run("second invitation", chromedp.Navigate(invite2))
	waitPage("the second invitation", "/invite", "Create your password")
	run("second invitation", fill("#password", pw), fill("#password2", pw), chromedp.Submit(css("#password")))
	waitPage("after the second invitation", "/patients/"+mia, "Mia Rivera")

	// 3. Sign out, and sign in on the sign-in page.
	run("sign out", chromedp.Click(css(".signout button")))
	waitPage("after signing out", "/login", "Sign in")
	if n := text(".notice"); !strings.Contains(n, "signed out") {
		t.Errorf("after signing out: %q", n)
	}
	shot("login")
	run("sign in", fill("#email", parentEmail), fill("#password", pw), chromedp.Submit(css("#email")))
	waitPage("after signing in", "/patients/"+mia, "Mia Rivera")

	// 4. Mia's appointment and document; the document downloads.
	if appt := text("section[aria-labelledby=appointments]"); !strings.Contains(appt, "Dr. Lane") || !strings.Contains(appt, "Room 1") {
		t.Errorf("the appointment is not shown: %q", appt)
	}
	if sw := text("nav.switcher"); !strings.Contains(sw, "Mia Rivera") || !strings.Contains(sw, "Leo Rivera") {
		t.Errorf("the patient switcher does not list both children: %q", sw)
	}
	shot("patient")
	run("download the document", chromedp.Click(css(`a[href$="/file?download=1"]`)))
	saved := filepath.Join(downloads, "mia-plan.pdf")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, err := os.ReadFile(saved); err == nil && bytes.Equal(b, plan) {
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(downloads)
			t.Fatalf("the document was not downloaded to %s (found %v)", saved, entries)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 5. Switch to Leo and return his intake form.
	run("switch to Leo", chromedp.Click(css(`nav.switcher a[href="/patients/`+leo+`"]`)))
	waitPage("after switching", "/patients/"+leo, "Leo Rivera")
	if forms := text("section[aria-labelledby=forms]"); !strings.Contains(forms, "Developmental history") || !strings.Contains(forms, "Please return it before the first visit.") {
		t.Errorf("the intake form and its message are not shown: %q", forms)
	}
	completed := filepath.Join(t.TempDir(), "completed-history.pdf")
	if err := os.WriteFile(completed, pdf("completed by Sam"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("return the form",
		chromedp.SetUploadFiles(css(`input[type=file]`), []string{completed}),
		chromedp.Click(css(`form.upload button[type=submit]`)))
	waitPage("after returning the form", "/patients/"+leo, "Leo Rivera")
	if n := text(".notice"); !strings.Contains(n, "form was returned") {
		t.Errorf("after returning the form: %q", n)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		run("reload", chromedp.Reload())
		waitPage("reloaded", "/patients/"+leo, "Leo Rivera")
		returned, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.querySelector(".returned")||{}).textContent||""`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(returned, "completed-history.pdf") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the returned form is never shown")
		}
		time.Sleep(100 * time.Millisecond)
	}
	shot("intake-forms")
	run("switch back to Mia", chromedp.Click(css(`nav.switcher a[href="/patients/`+mia+`"]`)))
	waitPage("after switching back", "/patients/"+mia, "Mia Rivera")

	// 6. Who accessed the record: the parent's own looks are there.
	run("access log", chromedp.Click(css(`nav.tabs a[href$="/access-log"]`)))
	waitPage("the access log", "/patients/"+mia+"/access-log", "Who accessed Mia Rivera\u2019s record")
	if log := text("ol.log"); !strings.Contains(log, "Sam Rivera") || !strings.Contains(log, "downloaded") {
		t.Errorf("the access log does not show the download: %q", log)
	}
	shot("access-log")

	// 7. An expired invitation: the page names it and offers a new link,
	// which arrives.
	const lateEmail = "late@family.example"
	noor, noorContact := child("Noor", lateEmail)
	st.do("POST", "/api/v1/patients/"+noor+"/portal-invitations", map[string]any{"contact_id": noorContact})
	late := link(lateEmail, 1, "/invite")
	secrets = append(secrets, strings.SplitN(late, "token=", 2)[1])
	clock.Advance(25 * time.Hour)
	run("open the expired link", chromedp.Navigate(late))
	waitPage("the expired link", "/invite", "Create your password")
	run("use the expired link", fill("#password", "a late passphrase"), fill("#password2", "a late passphrase"), chromedp.Submit(css("#password")))
	waitPage("the expired link's answer", "/invite", "This invitation link has expired")
	if btn := text("main form button"); btn != "Send me a new link" {
		t.Errorf("the expired page offers %q, want \"Send me a new link\"", btn)
	}
	shot("expired-link")
	run("ask for a new link", fill("#email", lateEmail), chromedp.Submit(css("#email")))
	waitPage("after asking for a new link", "/forgot-password", "Check your email")
	if n := text(".notice"); !strings.Contains(n, "new link is on its way") {
		t.Errorf("after asking for a new link: %q", n)
	}
	fresh := link(lateEmail, 2, "/invite")
	secrets = append(secrets, strings.SplitN(fresh, "token=", 2)[1])
	if fresh == late {
		t.Error("the new invitation has the old link")
	}

	// Nothing the test handled as a secret is in the logs.
	all := logs.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("the log contains a secret %.10q…", s)
		}
	}
	t.Logf("browser flow took %s; screenshots in %s", time.Since(started).Round(time.Millisecond), shots)
}
