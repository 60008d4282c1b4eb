package readapi

// An internal test: it moves the session clock (Deps.Clock) by hand.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/sessions"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/internal/testproc"
)

const (
	adminEmail    = "admin@harbor.example"
	adminPassword = "correct horse battery"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type authFixture struct {
	t      *testing.T
	a      *app.App
	h      http.Handler
	clock  *fakeClock
	clinic commands.BootstrapResult
	logs   *testproc.Buffer
}

// newAuthFixture opens Portico on a fresh database with one bootstrapped
// clinic, and an API whose session clock the test moves.
func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	a := testapp.New(t)
	res, err := a.Commands.Bootstrap(context.Background(), commands.Bootstrap{
		ClinicName: "Harbor Therapy", AdminEmail: adminEmail, AdminName: "Ada Admin", AdminPassword: adminPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)}
	logs := &testproc.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Deps{Logger: logger, Pool: a.Pool, Store: a.Store, Commands: a.Commands, Clock: clock.Now, Audit: a.Audit})
	return &authFixture{t: t, a: a, h: h, clock: clock, clinic: res, logs: logs}
}

type response struct {
	*httptest.ResponseRecorder
	body map[string]any
}

func (f *authFixture) do(method, path, token string, body io.Reader) response {
	f.t.Helper()
	req := httptest.NewRequest(method, path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	r := response{ResponseRecorder: rec}
	_ = json.Unmarshal(rec.Body.Bytes(), &r.body)
	return r
}

func (f *authFixture) login(email, password string) response {
	f.t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return f.do(http.MethodPost, "/api/v1/auth/login", "", bytes.NewReader(b))
}

// signIn logs in and returns the token.
func (f *authFixture) signIn(email, password string) string {
	f.t.Helper()
	r := f.login(email, password)
	if r.Code != http.StatusOK {
		f.t.Fatalf("login %s = %d %s", email, r.Code, r.Body)
	}
	token, _ := r.body["token"].(string)
	return token
}

func (f *authFixture) me(token string) response {
	f.t.Helper()
	return f.do(http.MethodGet, "/api/v1/me", token, nil)
}

func wantProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.Code != status || r.body["code"] != code || r.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s %s, want %d problem %s", r.Code, r.Header().Get("Content-Type"), r.Body, status, code)
	}
}

func TestLoginAndMe(t *testing.T) {
	f := newAuthFixture(t)
	r := f.login(" Admin@Harbor.example", adminPassword)
	if r.Code != http.StatusOK {
		t.Fatalf("login = %d %s", r.Code, r.Body)
	}
	if cc := r.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login Cache-Control = %q, want no-store", cc)
	}
	token, _ := r.body["token"].(string)
	if len(token) != 43 {
		t.Fatalf("token %q, want 43 base64url characters", token)
	}
	expires, err := time.Parse(time.RFC3339, r.body["expires_at"].(string))
	if err != nil || !expires.Equal(f.clock.Now().Add(12*time.Hour)) || !strings.HasSuffix(r.body["expires_at"].(string), "Z") {
		t.Fatalf("expires_at = %v (%v), want 12 hours on, in UTC", r.body["expires_at"], err)
	}
	wantAccount := map[string]any{"id": f.clinic.AdminID.String(), "kind": "staff", "name": "Ada Admin", "email": adminEmail, "role": "admin"}
	if got, _ := json.Marshal(r.body["account"]); string(got) != string(must(json.Marshal(wantAccount))) {
		t.Fatalf("account = %s, want %v", got, wantAccount)
	}

	me := f.me(token)
	if me.Code != http.StatusOK {
		t.Fatalf("GET /me = %d %s", me.Code, me.Body)
	}
	wantAccount["clinic_id"] = f.clinic.ClinicID.String()
	if got, _ := json.Marshal(me.body); string(got) != string(must(json.Marshal(wantAccount))) {
		t.Fatalf("GET /me = %s, want %v", got, wantAccount)
	}
	// The scheme is case-insensitive (RFC 7235).
	req := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
	req.Header.Set("Authorization", "bearer "+token)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("lower-case bearer = %d", rec.Code)
	}

	// Signing in writes no event; each GET /me is an access record.
	evs, err := f.a.Store.ReadAll(context.Background(), eventstore.Start, 1000, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	accesses := 0
	for _, e := range evs {
		if e.Type == "PHIAccessRecorded" {
			accesses++
		}
	}
	if len(evs)-accesses != 4 || accesses != 2 {
		t.Fatalf("%d events (%d access records) after bootstrap, sign-in and two GET /me; want bootstrap's 4 and 2 access records", len(evs), accesses)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestEveryLoginFailureLooksTheSame(t *testing.T) {
	f := newAuthFixture(t)
	post := func(body string) response {
		return f.do(http.MethodPost, "/api/v1/auth/login", "", strings.NewReader(body))
	}
	cases := map[string]response{
		"wrong password":   f.login(adminEmail, "correct horse battery?"),
		"unknown email":    f.login("nobody@harbor.example", adminPassword),
		"malformed JSON":   post(`{"email": "admin@harbor.example", "password": `),
		"wrong types":      post(`{"email": 42, "password": ["correct horse battery"]}`),
		"empty body":       post(``),
		"not an email":     f.login("admin", adminPassword),
		"no password":      f.login(adminEmail, ""),
		"oversized body":   post(`{"email":"` + adminEmail + `","password":"` + strings.Repeat("x", 20000) + `"}`),
		"email other case": f.login("ADMIN@harbor.example", "Correct Horse Battery"),
	}
	var first string
	for name, r := range cases {
		wantProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		if r.body["token"] != nil || r.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %v", name, r.Header())
		}
		delete(r.body, "instance")
		b := string(must(json.Marshal(r.body)))
		if first == "" {
			first = b
		}
		if b != first {
			t.Errorf("%s answered %s, unlike %s", name, b, first)
		}
	}
	var n int
	if err := f.a.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed logins left %d sessions (%v)", n, err)
	}
}

func TestCallsWithoutALiveSessionAreUnauthenticated(t *testing.T) {
	f := newAuthFixture(t)
	token := f.signIn(adminEmail, adminPassword)
	for name, header := range map[string]string{
		"no header":     "",
		"basic":         "Basic " + token,
		"bearer alone":  "Bearer",
		"bearer blank":  "Bearer   ",
		"unknown token": "Bearer " + strings.Repeat("A", 43),
		"garbage":       "Bearer not-a-token",
		"token twice":   "Bearer " + token + token,
	} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		wantProblem(t, response{rec, body}, http.StatusUnauthorized, "unauthenticated")
		if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate challenge", name)
		}
	}
	wantProblem(t, f.do(http.MethodPost, "/api/v1/auth/logout", "", nil), http.StatusUnauthorized, "unauthenticated")
}

func TestLogoutEndsTheSession(t *testing.T) {
	f := newAuthFixture(t)
	token := f.signIn(adminEmail, adminPassword)
	other := f.signIn(adminEmail, adminPassword)
	if r := f.do(http.MethodPost, "/api/v1/auth/logout", token, nil); r.Code != http.StatusNoContent || r.Body.Len() != 0 {
		t.Fatalf("logout = %d %s", r.Code, r.Body)
	}
	wantProblem(t, f.me(token), http.StatusUnauthorized, "unauthenticated")
	wantProblem(t, f.do(http.MethodPost, "/api/v1/auth/logout", token, nil), http.StatusUnauthorized, "unauthenticated")
	if r := f.me(other); r.Code != http.StatusOK {
		t.Fatalf("logout ended the account's other session: %d", r.Code)
	}
}

func TestSessionsExpireWhenIdleAndAtTwelveHours(t *testing.T) {
	f := newAuthFixture(t)

	idle := f.signIn(adminEmail, adminPassword)
	f.clock.Advance(29 * time.Minute)
	if r := f.me(idle); r.Code != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", r.Code)
	}
	f.clock.Advance(29 * time.Minute) // 58 minutes since sign-in, 29 since last use
	if r := f.me(idle); r.Code != http.StatusOK {
		t.Fatalf("used 29 minutes ago: %d", r.Code)
	}
	f.clock.Advance(30 * time.Minute)
	wantProblem(t, f.me(idle), http.StatusUnauthorized, "unauthenticated")

	busy := f.signIn(adminEmail, adminPassword)
	for range 12*3 - 1 { // every 20 minutes until 11h40m
		f.clock.Advance(20 * time.Minute)
		if r := f.me(busy); r.Code != http.StatusOK {
			t.Fatalf("at %v: %d", f.clock.Now(), r.Code)
		}
	}
	f.clock.Advance(20 * time.Minute)
	wantProblem(t, f.me(busy), http.StatusUnauthorized, "unauthenticated")
}

func TestTokensAreStoredOnlyAsHashesAndNeverLogged(t *testing.T) {
	f := newAuthFixture(t)
	token := f.signIn(adminEmail, adminPassword)
	f.me(token)
	f.do(http.MethodPost, "/api/v1/auth/logout", token, nil)
	f.login(adminEmail, "a wrong password")

	var rows []string
	r, err := f.a.Pool.Query(context.Background(), `SELECT s::text FROM sessions s`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var row string
		if err := r.Scan(&row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if r.Err() != nil || len(rows) != 1 {
		t.Fatalf("sessions rows = %v (%v)", rows, r.Err())
	}
	if strings.Contains(rows[0], token) {
		t.Fatalf("the raw token is in the sessions table: %s", rows[0])
	}

	logs := f.logs.String()
	if !strings.Contains(logs, "/api/v1/auth/login") {
		t.Fatalf("no access log lines were written: %q", logs)
	}
	for _, secret := range []string{token, adminPassword, "a wrong password", "argon2id"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the logs: %s", logs)
		}
	}
}

func TestEndAllForEndsEverySessionOfAnAccount(t *testing.T) {
	f := newAuthFixture(t)
	tokens := []string{f.signIn(adminEmail, adminPassword), f.signIn(adminEmail, adminPassword)}
	if _, err := f.a.Commands.AddStaffMember(context.Background(), commands.Meta{Actor: commands.System("test")}, commands.AddStaffMember{
		ClinicID: f.clinic.ClinicID, Email: "front@harbor.example", Name: "Fran Front", Role: staff.RoleStaff, Password: "front desk password",
	}); err != nil {
		t.Fatal(err)
	}
	front := f.signIn("front@harbor.example", "front desk password")

	n, err := sessions.New(f.a.Pool, sessions.WithClock(f.clock.Now)).EndAllFor(context.Background(), f.clinic.AdminID)
	if err != nil || n != 2 {
		t.Fatalf("EndAllFor = %d, %v; want 2 sessions ended", n, err)
	}
	for _, token := range tokens {
		wantProblem(t, f.me(token), http.StatusUnauthorized, "unauthenticated")
	}
	if r := f.me(front); r.Code != http.StatusOK || r.body["role"] != "staff" {
		t.Fatalf("another account's session: %d %v", r.Code, r.body)
	}
}

// The middleware by kind and by staff role, on routes of the test's own.
func TestRequireSessionKindsAndStaffRoles(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	for email, role := range map[string]staff.Role{"billing@harbor.example": staff.RoleBilling, "front@harbor.example": staff.RoleStaff} {
		if _, err := f.a.Commands.AddStaffMember(ctx, commands.Meta{Actor: commands.System("test")}, commands.AddStaffMember{
			ClinicID: f.clinic.ClinicID, Email: email, Name: string(role), Role: role, Password: "long enough password",
		}); err != nil {
			t.Fatal(err)
		}
	}
	admin := f.signIn(adminEmail, adminPassword)
	billing := f.signIn("billing@harbor.example", "long enough password")
	front := f.signIn("front@harbor.example", "long enough password")
	portalID := uuid.New()
	portal, _, err := sessions.New(f.a.Pool, sessions.WithClock(f.clock.Now)).Start(ctx, sessions.Principal{AccountID: portalID, AccountKind: sessions.KindPortal})
	if err != nil {
		t.Fatal(err)
	}

	s := &server{Deps: Deps{Pool: f.a.Pool, Store: f.a.Store, Commands: f.a.Commands}}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	echo := func(c *gin.Context) {
		a := actorOf(c)
		c.JSON(http.StatusOK, gin.H{"id": a.ID, "kind": a.Kind, "role": a.Role, "clinic_id": a.ClinicID})
	}
	r.GET("/any", s.requireSession(), echo)
	r.GET("/staff", s.requireSession("staff"), echo)
	r.GET("/portal", s.requireSession("portal"), echo)
	r.GET("/admin", s.requireStaffRole("admin"), echo)
	r.GET("/money", s.requireSession("staff"), s.requireStaffRole("admin", "billing"), echo)
	r.GET("/anystaff", s.requireStaffRole(), echo)
	r.GET("/unguarded", func(c *gin.Context) { sessionOf(c) })
	f.h = r

	cases := []struct {
		path, token string
		want        int
	}{
		{"/any", admin, 200}, {"/any", portal, 200},
		{"/staff", front, 200}, {"/staff", portal, 403},
		{"/portal", portal, 200}, {"/portal", admin, 403},
		{"/admin", admin, 200}, {"/admin", billing, 403}, {"/admin", front, 403}, {"/admin", portal, 403}, {"/admin", "", 401},
		{"/money", admin, 200}, {"/money", billing, 200}, {"/money", front, 403}, {"/money", portal, 403}, {"/money", "", 401},
		{"/anystaff", front, 200}, {"/anystaff", portal, 403},
	}
	for _, tc := range cases {
		res := f.do(http.MethodGet, tc.path, tc.token, nil)
		if res.Code != tc.want {
			t.Errorf("GET %s as %.8s… = %d %s, want %d", tc.path, tc.token, res.Code, res.Body, tc.want)
			continue
		}
		switch tc.want {
		case 403:
			wantProblem(t, res, 403, "forbidden")
		case 401:
			wantProblem(t, res, 401, "unauthenticated")
		}
	}

	res := f.do(http.MethodGet, "/portal", portal, nil)
	if res.body["id"] != portalID.String() || res.body["kind"] != "portal" || res.body["clinic_id"] != uuid.Nil.String() {
		t.Fatalf("portal actor = %v", res.body)
	}
	res = f.do(http.MethodGet, "/money", billing, nil)
	if res.body["role"] != "billing" || res.body["clinic_id"] != f.clinic.ClinicID.String() {
		t.Fatalf("billing actor = %v", res.body)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("sessionOf on an unguarded route did not panic")
			}
		}()
		f.do(http.MethodGet, "/unguarded", admin, nil)
	}()
	// A portal session's /me waits for portal accounts.
	f.h = New(Deps{Pool: f.a.Pool, Store: f.a.Store, Commands: f.a.Commands, Audit: f.a.Audit})
	wantProblem(t, f.me(portal), http.StatusNotFound, "not_found")
}
