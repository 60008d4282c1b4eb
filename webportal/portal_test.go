package webportal

// Unit tests against a fake API: headers, cookies, anti-forgery tokens,
// the words shown for each problem code, and what is forwarded to the API.

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAPI answers "METHOD /api/v1/path" with canned answers and records
// every request it gets.
type fakeAPI struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	got     []*http.Request
}

type fakeAnswer struct {
	status int
	body   string
	header map[string]string
}

func problemAnswer(status int, code, detail string) fakeAnswer {
	return fakeAnswer{status: status, body: `{"type":"https://portico.dev/problems/` + code + `","title":"x","status":` +
		strconv.Itoa(status) + `,"code":"` + code + `","detail":"` + detail + `"}`,
		header: map[string]string{"Content-Type": "application/problem+json"}}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.got = append(f.got, r)
	a, ok := f.answers[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	if !ok {
		a = problemAnswer(http.StatusNotFound, "not_found", "no such resource")
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func (f *fakeAPI) calls(path string) []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*http.Request
	for _, r := range f.got {
		if r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

const (
	pid1 = "6a0b4c4e-7f0e-4d8e-9a51-2b8f7d0c1a11"
	pid2 = "7b1c5d5f-8a1f-4e9f-8b62-3c9a8e1d2b22"
)

func newFake() *fakeAPI {
	return &fakeAPI{answers: map[string]fakeAnswer{
		"POST /api/v1/auth/login": {status: 200, body: `{"token":"tok-portal","expires_at":"2030-01-01T00:00:00Z","account":{"id":"x","kind":"portal","name":"Sam Rivera","email":"sam@family.example"}}`},
		"GET /api/v1/me": {status: 200, body: `{"id":"x","kind":"portal","name":"Sam Rivera","email":"sam@family.example","patients":[` +
			`{"patient_id":"` + pid1 + `","name":"Mia Rivera","relationship":"parent","permissions":["documents","activities","forms","billing"]},` +
			`{"patient_id":"` + pid2 + `","name":"Leo Rivera","relationship":"parent","permissions":[]}]}`},
		"GET /api/v1/portal/patients/" + pid1 + "/appointments":    {status: 200, body: `{"patient_id":"` + pid1 + `","appointments":[{"id":"a","starts_at":"2030-01-02T15:00:00Z","ends_at":"2030-01-02T15:45:00Z","provider":"Dr. Lane","location":"Room 1","kind":"therapy","version":1}]}`},
		"GET /api/v1/portal/patients/" + pid2 + "/appointments":    {status: 200, body: `{"patient_id":"` + pid2 + `","appointments":[]}`},
		"GET /api/v1/portal/patients/" + pid1 + "/documents":       {status: 200, body: `{"patient_id":"` + pid1 + `","count":0,"documents":[]}`},
		"GET /api/v1/portal/patients/" + pid1 + "/home-activities": {status: 200, body: `{"patient_id":"` + pid1 + `","home_activities":[]}`},
		"GET /api/v1/portal/patients/" + pid1 + "/intake-forms":    {status: 200, body: `{"patient_id":"` + pid1 + `","intake_forms":[{"assignment_id":"` + pid2 + `","form_id":"f","form_name":"History","assigned_at":"2030-01-01T00:00:00Z","version":1}]}`},
		"POST /api/v1/auth/logout":                                 {status: 204},
		"GET /api/v1/healthz":                                      {status: 200, body: `{}`},
	}}
}

func newPortal(t *testing.T, api http.Handler, publicURL string) *Portal {
	t.Helper()
	p, err := New(Config{API: api, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// browser keeps cookies like a browser, for one portal.
type browser struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]*http.Cookie
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	return &browser{t: t, h: h, cookies: map[string]*http.Cookie{}}
}

func (b *browser) do(req *http.Request) *httptest.ResponseRecorder {
	req.RemoteAddr = "203.0.113.7:51234"
	req.Header.Set("User-Agent", "TestBrowser/1.0")
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return rec
}

func (b *browser) get(path string) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest("GET", path, nil))
}

func (b *browser) post(path string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", rec.Body)
	}
	return m[1]
}

func (b *browser) signIn() {
	b.t.Helper()
	tok := csrfOf(b.t, b.get("/login"))
	rec := b.post("/login", url.Values{"csrf": {tok}, "email": {"sam@family.example"}, "password": {"a family passphrase"}})
	if rec.Code != http.StatusSeeOther || b.cookies[sessionCookie] == nil {
		b.t.Fatalf("sign in = %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestEveryPageHasTheSecurityHeaders(t *testing.T) {
	b := newBrowser(t, newPortal(t, newFake(), "http://127.0.0.1:8080"))
	for _, path := range []string{"/login", "/forgot-password", "/invite?token=abc", "/reset-password?token=abc", "/no-such-page"} {
		rec := b.get(path)
		h := rec.Header()
		if h.Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy = %q", path, h.Get("Content-Security-Policy"))
		}
		for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", path, name, got, want)
			}
		}
		body := rec.Body.String()
		for _, want := range []string{`<html lang="en">`, `href="#main"`, `name="viewport"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the page lacks %s", path, want)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "style=") {
			t.Errorf("%s: inline script or style (the CSP forbids them)", path)
		}
	}
	for _, want := range []string{"default-src 'self'", "script-src 'self' https://js.stripe.com", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "style-src 'self'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("the CSP lacks %s", want)
		}
	}
}

func TestCookieFlags(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		secure    bool
	}{
		{"http://127.0.0.1:8080", false},
		{"http://localhost:8080", false},
		{"https://portal.harbor.example", true},
		{"http://portal.harbor.example", true},
	} {
		b := newBrowser(t, newPortal(t, newFake(), tc.publicURL))
		b.signIn()
		for _, name := range []string{sessionCookie, csrfCookie} {
			c := b.cookies[name]
			if c == nil {
				t.Fatalf("%s: no cookie %s", tc.publicURL, name)
			}
			if !c.HttpOnly || c.Secure != tc.secure || c.Path != "/" {
				t.Errorf("%s: cookie %s HttpOnly=%v Secure=%v Path=%q", tc.publicURL, name, c.HttpOnly, c.Secure, c.Path)
			}
		}
		if s := b.cookies[sessionCookie].SameSite; s != http.SameSiteLaxMode {
			t.Errorf("session cookie SameSite = %v", s)
		}
		if s := b.cookies[csrfCookie].SameSite; s != http.SameSiteStrictMode {
			t.Errorf("csrf cookie SameSite = %v", s)
		}
		if b.cookies[sessionCookie].Value != "tok-portal" {
			t.Errorf("the session cookie does not hold the API's token")
		}
	}
}

func TestFormsWithoutTheirTokenAreRefusedBeforeTheAPI(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	good := csrfOf(t, b.get("/login"))
	creds := url.Values{"email": {"sam@family.example"}, "password": {"x"}}
	for name, tok := range map[string]string{"missing": "", "wrong": "not-the-token", "another browser's": csrfOf(t, newBrowser(t, b.h).get("/login"))} {
		form := url.Values{"email": creds["email"], "password": creds["password"]}
		if tok != "" {
			form.Set("csrf", tok)
		}
		if rec := b.post("/login", form); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Please send the form again") {
			t.Errorf("%s token: %d", name, rec.Code)
		}
	}
	if n := len(api.calls("/api/v1/auth/login")); n != 0 {
		t.Fatalf("the API got %d sign-ins with a bad token", n)
	}
	// A cross-site form has no cookie at all.
	nb := newBrowser(t, b.h)
	if rec := nb.post("/login", url.Values{"csrf": {good}, "email": creds["email"], "password": creds["password"]}); rec.Code != http.StatusForbidden {
		t.Errorf("no cookie: %d", rec.Code)
	}

	b.signIn()
	// Signing in binds the token to the session: the pre-session one no
	// longer works.
	if rec := b.post("/logout", url.Values{"csrf": {good}}); rec.Code != http.StatusForbidden {
		t.Errorf("logout with the pre-session token = %d", rec.Code)
	}
	for _, path := range []string{"/forgot-password", "/invite", "/reset-password", "/patients/" + pid1 + "/pay"} {
		if rec := b.post(path, url.Values{"email": {"a@b.example"}, "token": {"t"}, "password": {"p"}, "password2": {"p"}, "amount": {"1"}}); rec.Code != http.StatusForbidden {
			t.Errorf("POST %s without a token = %d", path, rec.Code)
		}
	}
	// The upload form too.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "done.pdf")
	_, _ = fw.Write([]byte("%PDF-1.4 x"))
	_ = mw.Close()
	req := httptest.NewRequest("POST", "/patients/"+pid1+"/forms/"+pid2+"/return", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if rec := b.do(req); rec.Code != http.StatusForbidden {
		t.Errorf("form return without a token = %d", rec.Code)
	}
	if n := len(api.calls("/api/v1/portal/patients/" + pid1 + "/intake-forms/" + pid2 + "/return")); n != 0 {
		t.Errorf("the API got %d returns without a token", n)
	}
	// With the page's token, sign-out works.
	page := b.get("/patients/" + pid1)
	if rec := b.post("/logout", url.Values{"csrf": {csrfOf(t, page)}}); rec.Code != http.StatusSeeOther || b.cookies[sessionCookie] != nil {
		t.Errorf("logout = %d, session cookie %v", rec.Code, b.cookies[sessionCookie])
	}
}

func TestTheAPISeesTheBrowser(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	b.signIn()
	rec := b.get("/patients/" + pid1)
	if rec.Code != http.StatusOK {
		t.Fatalf("patient page = %d\n%s", rec.Code, rec.Body)
	}
	calls := api.calls("/api/v1/portal/patients/" + pid1 + "/appointments")
	if len(calls) != 1 {
		t.Fatalf("appointments called %d times", len(calls))
	}
	r := calls[0]
	if r.RemoteAddr != "203.0.113.7:51234" || r.UserAgent() != "TestBrowser/1.0" || r.Header.Get("Authorization") != "Bearer tok-portal" {
		t.Errorf("the API saw %q %q %q", r.RemoteAddr, r.UserAgent(), r.Header.Get("Authorization"))
	}
	if id := r.Header.Get("X-Correlation-ID"); id == "" || id != rec.Header().Get("X-Correlation-ID") {
		t.Errorf("correlation id %q, page's %q", id, rec.Header().Get("X-Correlation-ID"))
	}
	body := rec.Body.String()
	for _, want := range []string{"Dr. Lane", "Leo Rivera", `aria-current="page">Mia Rivera`, "History", `href="/patients/` + pid1 + `/billing"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the patient page lacks %q", want)
		}
	}
	// Leo's grant allows nothing but appointments: no other section is asked for.
	b.get("/patients/" + pid2)
	if n := len(api.calls("/api/v1/portal/patients/" + pid2 + "/documents")); n != 0 {
		t.Errorf("documents asked for without the permission")
	}
	// A patient the account is not linked to is not found, without asking.
	if rec := b.get("/patients/00000000-0000-4000-8000-000000000000"); rec.Code != http.StatusNotFound {
		t.Errorf("unlinked patient = %d", rec.Code)
	}
}

func TestEndedSessionGoesToSignIn(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	b.signIn()
	api.answers["GET /api/v1/me"] = problemAnswer(401, "unauthenticated", "sign in again")
	rec := b.get("/patients/" + pid1)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?m=expired" || b.cookies[sessionCookie] != nil {
		t.Fatalf("ended session = %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if !strings.Contains(b.get("/login?m=expired").Body.String(), "Your session ended") {
		t.Error("the sign-in page does not say the session ended")
	}
	// Signed out: / goes to the sign-in page.
	if rec := b.get("/"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login" {
		t.Errorf("/ signed out = %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestStaffAccountsAreSentAway(t *testing.T) {
	api := newFake()
	api.answers["POST /api/v1/auth/login"] = fakeAnswer{status: 200, body: `{"token":"tok-staff","account":{"kind":"staff","name":"Front"}}`}
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	tok := csrfOf(t, b.get("/login"))
	rec := b.post("/login", url.Values{"csrf": {tok}, "email": {"f@h.example"}, "password": {"x"}})
	if rec.Code != http.StatusForbidden || b.cookies[sessionCookie] != nil || !strings.Contains(rec.Body.String(), "for patients and families") {
		t.Errorf("staff sign-in = %d", rec.Code)
	}
	if calls := api.calls("/api/v1/auth/logout"); len(calls) != 1 || calls[0].Header.Get("Authorization") != "Bearer tok-staff" {
		t.Errorf("the staff session was not ended")
	}
}

func TestProblemsBecomeClearMessages(t *testing.T) {
	for _, tc := range []struct {
		path, apiPath string
		answer        fakeAnswer
		want          []string
	}{
		{"/invite", "/api/v1/invitations/accept", problemAnswer(400, "invitation_expired", "x"), []string{"This invitation link has expired", "24 hours", "Send me a new link", `action="/forgot-password"`}},
		{"/invite", "/api/v1/invitations/accept", problemAnswer(400, "token_used", "x"), []string{"already been used", "Send me a new link", `href="/login"`}},
		{"/invite", "/api/v1/invitations/accept", problemAnswer(400, "token_invalid", "x"), []string{"This link does not work", "Send me a new link"}},
		{"/invite", "/api/v1/invitations/accept", problemAnswer(400, "password_rejected", "this password is too common; choose another"), []string{"too common", "Create your password", "at least 8 characters"}},
		{"/invite", "/api/v1/invitations/accept", problemAnswer(401, "invalid_credentials", "x"), []string{"already has a portal account"}},
		{"/reset-password", "/api/v1/auth/reset-password", problemAnswer(400, "token_expired", "x"), []string{"password reset link has expired", "one hour", "Send me a new link"}},
		{"/reset-password", "/api/v1/auth/reset-password", problemAnswer(400, "password_rejected", "at least 8 characters"), []string{"cannot be used: at least 8 characters", "Choose a new password"}},
		{"/login", "/api/v1/auth/login", problemAnswer(401, "invalid_credentials", "x"), []string{"The email or password is not right", "Forgot password"}},
		{"/login", "/api/v1/auth/login", fakeAnswer{status: 429, body: `{"code":"too_many_attempts","status":429}`, header: map[string]string{"Content-Type": "application/problem+json", "Retry-After": "600"}}, []string{"Wait 10 minutes"}},
		{"/login", "/api/v1/auth/login", problemAnswer(500, "internal", "x"), []string{"Something went wrong", "Reference:"}},
	} {
		api := newFake()
		key := "POST " + tc.apiPath
		api.answers[key] = tc.answer
		b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
		page := b.get(tc.path + "?token=tok")
		rec := b.post(tc.path, url.Values{"csrf": {csrfOf(t, page)}, "token": {"tok"}, "email": {"sam@family.example"}, "password": {"pw-pw-pw-pw"}, "password2": {"pw-pw-pw-pw"}})
		if rec.Code < 400 {
			t.Errorf("%s %s: status %d", tc.path, key, rec.Code)
		}
		body := rec.Body.String()
		for _, want := range tc.want {
			if !strings.Contains(body, want) {
				t.Errorf("%s answered %s: the page lacks %q\n%s", tc.path, tc.answer.body, want, body)
			}
		}
	}
	// Every code the API documents has its own words.
	for _, code := range []string{"invitation_expired", "token_expired", "token_used", "token_invalid", "password_rejected", "invalid_credentials",
		"too_many_attempts", "unauthenticated", "not_found", "file_too_large", "unsupported_media_type", "upload_incomplete",
		"payment_processing_disabled", "validation_failed", "audit_unavailable", "unavailable", "forbidden", "conflict"} {
		if m := messageFor(problem{Code: code}, ctxGeneral); m.Title == "Something went wrong" {
			t.Errorf("no message for %s", code)
		}
	}
}

func TestPasswordsMustMatchBeforeTheAPI(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	page := b.get("/invite?token=tok")
	rec := b.post("/invite", url.Values{"csrf": {csrfOf(t, page)}, "token": {"tok"}, "password": {"one passphrase"}, "password2": {"another one"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "do not match") {
		t.Errorf("mismatch = %d", rec.Code)
	}
	if len(api.calls("/api/v1/invitations/accept")) != 0 {
		t.Error("the API was called")
	}
}

func TestAPIPathsPassThrough(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	rec := b.get("/api/v1/me")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") != "" {
		t.Errorf("/api/v1/me = %d, CSP %q", rec.Code, rec.Header().Get("Content-Security-Policy"))
	}
	if len(api.calls("/api/v1/me")) != 1 {
		t.Error("the API did not get the call")
	}
	if rec := b.get("/static/portal.css"); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("css = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestBillingHidesWhatTheClinicTurnedOff(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	b.signIn()
	rec := b.get("/patients/" + pid1 + "/billing")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "does not show billing") {
		t.Errorf("billing, all 404 = %d\n%s", rec.Code, rec.Body)
	}
	api.answers["GET /api/v1/portal/patients/"+pid1+"/balance"] = fakeAnswer{status: 200, body: `{"patient_id":"` + pid1 + `","balances":[{"currency":"USD","balance_cents":12550}]}`}
	api.answers["GET /api/v1/portal/patients/"+pid1+"/payments"] = fakeAnswer{status: 200, body: `{"payments":[{"id":"` + pid2 + `","amount_cents":5000,"currency":"USD","state":"succeeded","method":"card","created_at":"2030-01-01T10:00:00Z"}]}`}
	body := b.get("/patients/" + pid1 + "/billing").Body.String()
	for _, want := range []string{"$125.50", "$50.00", "/payments/" + pid2 + "/receipt", "pay?amount=125.50"} {
		if !strings.Contains(body, want) {
			t.Errorf("billing lacks %q", want)
		}
	}
	if strings.Contains(body, `id="invoices"`) {
		t.Error("invoices are shown although the API answered 404")
	}
}

func TestCardPageSaysWhenStripeIsNotSetUp(t *testing.T) {
	api := newFake()
	b := newBrowser(t, newPortal(t, api, "http://127.0.0.1:8080"))
	b.signIn()
	if body := b.get("/patients/" + pid1 + "/pay").Body.String(); !strings.Contains(body, "not set up") {
		t.Errorf("pay page without a Stripe key:\n%s", body)
	}
	p, err := New(Config{API: api, PublicURL: "http://127.0.0.1:8080", StripePublishableKey: "pk_test_x"})
	if err != nil {
		t.Fatal(err)
	}
	api.answers["POST /api/v1/portal/patients/"+pid1+"/payments"] = fakeAnswer{status: 201, body: `{"payment_id":"` + pid2 + `","client_secret":"pi_1_secret_2"}`}
	b = newBrowser(t, p)
	b.signIn()
	page := b.get("/patients/" + pid1 + "/pay?amount=12.50")
	rec := b.post("/patients/"+pid1+"/pay", url.Values{"csrf": {csrfOf(t, page)}, "amount": {"12.50"}, "currency": {"USD"}})
	body := rec.Body.String()
	for _, want := range []string{`src="/static/pay.js"`, `data-secret="pi_1_secret_2"`, "Stripe.js, which could not be loaded", "$12.50"} {
		if !strings.Contains(body, want) {
			t.Errorf("card page lacks %q\n%s", want, body)
		}
	}
	if calls := api.calls("/api/v1/portal/patients/" + pid1 + "/payments"); len(calls) != 1 {
		t.Fatalf("payments called %d times", len(calls))
	}
}

func TestParseAmount(t *testing.T) {
	for in, want := range map[string]int64{"12.50": 1250, "12,5": 1250, "$3": 300, "0.07": 7} {
		if got, err := parseAmount(in); err != nil || got != want {
			t.Errorf("parseAmount(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", "1.234", "-5"} {
		if got, err := parseAmount(in); err == nil && got > 0 {
			t.Errorf("parseAmount(%q) = %d, want an error", in, got)
		}
	}
}

func TestReturningAFormSendsOnlyTheFile(t *testing.T) {
	api := newFake()
	ret := "/api/v1/portal/patients/" + pid1 + "/intake-forms/" + pid2 + "/return"
	api.answers["POST "+ret] = fakeAnswer{status: 201, body: `{"assignment_id":"` + pid2 + `"}`}
	p, err := New(Config{API: api, PublicURL: "http://127.0.0.1:8080", UploadLimit: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, p)
	b.signIn()
	tok := csrfOf(t, b.get("/patients/"+pid1))
	send := func(data []byte) *httptest.ResponseRecorder {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf", tok)
		fw, _ := mw.CreateFormFile("file", "done.pdf")
		_, _ = fw.Write(data)
		_ = mw.Close()
		req := httptest.NewRequest("POST", "/patients/"+pid1+"/forms/"+pid2+"/return", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return b.do(req)
	}
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{nil, "e=no_file"},
		{bytes.Repeat([]byte("x"), 4<<10), "e=file_too_large"},
		{[]byte("%PDF-1.4 done"), "m=returned"},
	} {
		rec := send(tc.data)
		if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), tc.want) {
			t.Errorf("%d bytes: %d %q, want %s", len(tc.data), rec.Code, rec.Header().Get("Location"), tc.want)
		}
	}
	calls := api.calls(ret)
	if len(calls) != 1 {
		t.Fatalf("the API got %d returns, want 1", len(calls))
	}
	if err := calls[0].ParseMultipartForm(1 << 20); err != nil {
		t.Fatal(err)
	}
	if _, ok := calls[0].MultipartForm.Value["csrf"]; ok {
		t.Error("the anti-forgery token was sent to the API")
	}
	if fh := calls[0].MultipartForm.File["file"]; len(fh) != 1 || fh[0].Filename != "done.pdf" {
		t.Errorf("the API got files %v", calls[0].MultipartForm.File)
	}
	if body := b.get("/patients/" + pid1 + "?e=file_too_large").Body.String(); !strings.Contains(body, "The file is too large") {
		t.Error("the page does not say the file was too large")
	}
}
