package readapi_test

// End to end over HTTP, with a real mailpit: invitations, acceptance,
// "Forgot password", resets, revocation, and what must never be stored.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/internal/testmail"
	"github.com/portico-health/portico/internal/testproc"
	"github.com/portico-health/portico/readapi"
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

// portal is a whole Portico with mailpit as its SMTP server, a hand-moved
// clock, projections and the mailer running, and logs kept for inspection.
type portal struct {
	t     *testing.T
	a     *app.App
	h     http.Handler
	mail  *testmail.Mailpit
	clock *testClock
	logs  *testproc.Buffer
	staff client
	// secrets are every raw token and password the test saw; none may be
	// stored in an event or written to a log.
	secrets []string
}

const publicURL = "http://portal.test"

func newPortal(t *testing.T, configure ...func(*config.Config)) *portal {
	t.Helper()
	mp := testmail.Start(t)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	logs := &testproc.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := testapp.NewWith(t, func(c *config.Config) {
		c.SMTPURL = mp.SMTPURL()
		c.PublicURL = publicURL
		for _, f := range configure {
			f(c)
		}
	}, app.WithClock(clock.Now), app.WithLogger(logger))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h := readapi.New(readapi.Deps{Logger: logger, Pool: a.Pool, Store: a.Store, Commands: a.Commands, Engine: a.Engine, Clock: clock.Now, Audit: a.Audit,
		Location: a.Config.Location()})
	h = checkOpenAPI(t, h)
	p := &portal{t: t, a: a, h: h, mail: mp, clock: clock, logs: logs}
	p.staff = signIn(t, a, h, "Harbor Therapy", "front@harbor.example")
	p.secrets = append(p.staff.secrets(), "long enough password")
	return p
}

func (c client) secrets() []string { return []string{c.token} }

func (p *portal) anon() client { return client{t: p.t, h: p.h} }

// patientWithParent registers a child and a parent contact, and returns
// their ids.
func (p *portal) patientWithParent(first, parentEmail string) (pid, contactID string) {
	p.t.Helper()
	code, body := p.staff.do("POST", "/api/v1/patients", map[string]string{"first_name": first, "last_name": "Rivera", "date_of_birth": "2018-05-01"})
	if code != http.StatusCreated {
		p.t.Fatalf("register patient = %d %v", code, body)
	}
	pid = body["id"].(string)
	code, body = p.staff.do("POST", "/api/v1/patients/"+pid+"/contacts", map[string]string{"name": "Sam Rivera", "relationship": "parent", "email": parentEmail})
	if code != http.StatusCreated {
		p.t.Fatalf("add contact = %d %v", code, body)
	}
	return pid, body["id"].(string)
}

func (p *portal) invite(pid, contactID string) map[string]any {
	p.t.Helper()
	code, body := p.staff.do("POST", "/api/v1/patients/"+pid+"/portal-invitations", map[string]any{"contact_id": contactID})
	if code != http.StatusAccepted {
		p.t.Fatalf("invite = %d %v", code, body)
	}
	return body
}

// token waits for the n-th email to `to` and returns the token of its link
// under path.
func (p *portal) token(to string, n int, path string) (string, testmail.Message) {
	p.t.Helper()
	msgs := p.mail.WaitFor(p.t, to, n, 20*time.Second)
	msg := msgs[n-1]
	link := testmail.Link(p.t, msg, publicURL+path+"?token=")
	u, err := url.Parse(link)
	if err != nil {
		p.t.Fatal(err)
	}
	tok := u.Query().Get("token")
	if tok == "" {
		p.t.Fatalf("no token in %q", link)
	}
	p.secrets = append(p.secrets, tok)
	return tok, msg
}

func (p *portal) accept(token, password string) (int, map[string]any) {
	p.t.Helper()
	p.secrets = append(p.secrets, password)
	return p.anon().do("POST", "/api/v1/invitations/accept", map[string]string{"token": token, "password": password})
}

func (p *portal) signedIn(body map[string]any) client {
	p.t.Helper()
	tok, _ := body["token"].(string)
	if tok == "" {
		p.t.Fatalf("no session token in %v", body)
	}
	p.secrets = append(p.secrets, tok)
	return client{t: p.t, h: p.h, token: tok}
}

func patientIDs(me map[string]any) []string {
	var ids []string
	list, _ := me["patients"].([]any)
	for _, x := range list {
		ids = append(ids, x.(map[string]any)["patient_id"].(string))
	}
	return ids
}

func code(body map[string]any) string { s, _ := body["code"].(string); return s }

// assertNoSecrets scans every stored event and every log line for the raw
// tokens and passwords the test handled, and for password hashes.
func (p *portal) assertNoSecrets() {
	p.t.Helper()
	ctx := context.Background()
	var stored strings.Builder
	for after := eventstore.Position(0); ; {
		page, err := p.a.Store.ReadAll(ctx, after, 1000, eventstore.Filter{})
		if err != nil {
			p.t.Fatal(err)
		}
		for _, e := range page {
			md, _ := json.Marshal(e.Metadata)
			stored.Write(e.Data)
			stored.Write(md)
			stored.WriteString(e.Stream)
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	events, logs := stored.String(), p.logs.String()
	for _, s := range append(p.secrets, "$argon2id$") {
		if s == "" {
			continue
		}
		if strings.Contains(events, s) {
			p.t.Errorf("a stored event contains the secret %.12q…", s)
		}
		if strings.Contains(logs, s) {
			p.t.Errorf("the log contains the secret %.12q…", s)
		}
	}
}

func TestInvitationAcceptedOnceThenSignIn(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Mia", "sam@family.example")
	inv := p.invite(pid, contact)

	tok, msg := p.token("sam@family.example", 1, "/invite")
	if !strings.Contains(msg.Subject+msg.Text, "Harbor Therapy") {
		t.Errorf("the email does not name the clinic: %q", msg.Subject)
	}
	for _, phi := range []string{"Mia", "Rivera", "2018-05-01"} {
		if strings.Contains(msg.Subject+msg.Text+msg.HTML, phi) {
			t.Errorf("the email contains patient data %q", phi)
		}
	}

	// A password on the common list is refused and does not use the link up.
	if c, body := p.accept(tok, "password123"); c != http.StatusBadRequest || code(body) != "password_rejected" {
		t.Fatalf("common password: %d %v", c, body)
	}
	c, body := p.accept(tok, "a new portal passphrase")
	if c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	}
	parent := p.signedIn(body)
	if acct := body["account"].(map[string]any); acct["kind"] != "portal" || acct["id"] != inv["portal_user_id"] {
		t.Errorf("account = %v, want the invited portal user", acct)
	}
	c, me := parent.do("GET", "/api/v1/me", nil)
	if c != http.StatusOK || len(patientIDs(me)) != 1 || patientIDs(me)[0] != pid {
		t.Fatalf("GET /me = %d %v, want patient %s", c, me, pid)
	}

	// The link works once.
	if c, body := p.accept(tok, "a new portal passphrase"); c != http.StatusBadRequest || code(body) != "token_used" {
		t.Errorf("second use = %d %v, want token_used", c, body)
	}
	// A forged token is refused.
	if c, body := p.accept(tok[:len(tok)-2]+"AA", "a new portal passphrase"); c != http.StatusBadRequest || code(body) != "token_invalid" {
		t.Errorf("forged token = %d %v, want token_invalid", c, body)
	}
	// The new password signs in.
	if c, body := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "SAM@family.example", "password": "a new portal passphrase"}); c != http.StatusOK {
		t.Errorf("login = %d %v", c, body)
	} else {
		p.signedIn(body)
	}

	// Staff see the user as active, with the invitation accepted and delivered.
	eventually(t, "the portal user is listed as active", func() bool {
		c, list := p.staff.do("GET", "/api/v1/patients/"+pid+"/portal-users", nil)
		users, _ := list["portal_users"].([]any)
		if c != http.StatusOK || len(users) != 1 {
			return false
		}
		u := users[0].(map[string]any)
		li, _ := u["last_invitation"].(map[string]any)
		return u["status"] == "active" && u["relationship"] == "parent" && li["state"] == "accepted" && li["delivered_at"] != nil
	})

	// The parent sees who looked at the child's record: staff, by role.
	eventually(t, "the access log shows the staff member's look", func() bool {
		c, log := parent.do("GET", "/api/v1/portal/patients/"+pid+"/access-log", nil)
		entries, _ := log["accesses"].([]any)
		for _, e := range entries {
			if m := e.(map[string]any); m["kind"] == "staff" && m["role"] == "admin" && m["outcome"] == "allowed" {
				return c == http.StatusOK
			}
		}
		return false
	})
	// Another patient's data, of this clinic or another, is not found.
	otherChild, _ := p.patientWithParent("Otto", "someone@else.example")
	for _, path := range []string{"/api/v1/portal/patients/" + otherChild + "/access-log", "/api/v1/portal/patients/" + contact + "/access-log"} {
		if c, body := parent.do("GET", path, nil); c != http.StatusNotFound {
			t.Errorf("GET %s by an unlinked portal user = %d %v, want 404", path, c, body)
		}
	}
	otherClinic := signIn(t, p.a, p.h, "Other Clinic", "desk@other.example")
	p.secrets = append(p.secrets, otherClinic.token)
	for _, path := range []string{"/api/v1/patients/" + pid + "/portal-users", "/api/v1/audit/patients/" + pid + "/history", "/api/v1/portal/patients/" + pid + "/access-log"} {
		if c, _ := otherClinic.do("GET", path, nil); c != http.StatusNotFound && c != http.StatusForbidden {
			t.Errorf("GET %s by another clinic's staff = %d, want 404", path, c)
		}
	}
	p.assertNoSecrets()
}

func TestExpiredInvitationThenForgotPasswordSendsFreshLink(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Leo", "kim@family.example")
	p.invite(pid, contact)
	tok, _ := p.token("kim@family.example", 1, "/invite")

	p.clock.Advance(24*time.Hour + time.Minute)
	p.staff = signIn(t, p.a, p.h, "Harbor Therapy", "front@harbor.example") // the day ended the staff session
	if c, body := p.accept(tok, "kim's own passphrase"); c != http.StatusBadRequest || code(body) != "invitation_expired" {
		t.Fatalf("expired link = %d %v, want invitation_expired", c, body)
	}
	eventually(t, "staff see the invitation expired", func() bool {
		_, list := p.staff.do("GET", "/api/v1/patients/"+pid+"/portal-users", nil)
		users, _ := list["portal_users"].([]any)
		return len(users) == 1 && users[0].(map[string]any)["status"] == "invitation_expired"
	})

	// "Forgot password" for a never-activated account sends a fresh invitation.
	if c, _ := p.anon().do("POST", "/api/v1/auth/forgot-password", map[string]string{"email": "kim@family.example"}); c != http.StatusAccepted {
		t.Fatalf("forgot password = %d", c)
	}
	fresh, _ := p.token("kim@family.example", 2, "/invite")
	if fresh == tok {
		t.Fatal("the fresh link is the old one")
	}
	c, body := p.accept(fresh, "kim's own passphrase")
	if c != http.StatusOK {
		t.Fatalf("fresh link = %d %v", c, body)
	}
	kim := p.signedIn(body)
	if _, me := kim.do("GET", "/api/v1/me", nil); len(patientIDs(me)) != 1 {
		t.Errorf("GET /me = %v", me)
	}
	p.assertNoSecrets()
}

func TestNewerInvitationSupersedesOlder(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Ava", "lee@family.example")
	p.invite(pid, contact)
	first, _ := p.token("lee@family.example", 1, "/invite")
	p.invite(pid, contact)
	second, _ := p.token("lee@family.example", 2, "/invite")
	if c, body := p.accept(first, "lee's own passphrase"); c != http.StatusBadRequest || code(body) != "invitation_expired" {
		t.Errorf("superseded link = %d %v, want invitation_expired", c, body)
	}
	if c, body := p.accept(second, "lee's own passphrase"); c != http.StatusOK {
		t.Errorf("newest link = %d %v", c, body)
	} else {
		p.signedIn(body)
	}
	p.assertNoSecrets()
}

func TestParentOfTwoChildrenKeepsOneAccount(t *testing.T) {
	p := newPortal(t)
	first, c1 := p.patientWithParent("Noah", "pat@family.example")
	second, c2 := p.patientWithParent("Emma", "pat@family.example")
	inv1 := p.invite(first, c1)
	tok, _ := p.token("pat@family.example", 1, "/invite")
	c, body := p.accept(tok, "pat's own passphrase")
	if c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	}
	parent := p.signedIn(body)

	inv2 := p.invite(second, c2)
	if inv1["portal_user_id"] != inv2["portal_user_id"] {
		t.Fatalf("two accounts for one email: %v and %v", inv1["portal_user_id"], inv2["portal_user_id"])
	}
	// The second email's link signs the active account in with its password.
	tok2, _ := p.token("pat@family.example", 2, "/invite")
	if c, body := p.accept(tok2, "not pat's password"); c != http.StatusUnauthorized || code(body) != "invalid_credentials" {
		t.Errorf("second link with a wrong password = %d %v", c, body)
	}
	if c, body := p.accept(tok2, "pat's own passphrase"); c != http.StatusOK {
		t.Errorf("second link = %d %v", c, body)
	} else {
		p.signedIn(body)
	}
	_, me := parent.do("GET", "/api/v1/me", nil)
	if ids := patientIDs(me); len(ids) != 2 || ids[0] != first || ids[1] != second {
		t.Fatalf("GET /me patients = %v, want [%s %s]", ids, first, second)
	}

	// Revoking one child ends access to it at the next request; the session
	// lives on for the other child. Revoking the last ends the session.
	uid := inv1["portal_user_id"].(string)
	if c, body := p.staff.do("DELETE", "/api/v1/patients/"+first+"/portal-users/"+uid, nil); c != http.StatusNoContent {
		t.Fatalf("revoke = %d %v", c, body)
	}
	if _, me := parent.do("GET", "/api/v1/me", nil); len(patientIDs(me)) != 1 || patientIDs(me)[0] != second {
		t.Errorf("after revoking the first child, GET /me = %v", me)
	}
	if c, _ := p.staff.do("DELETE", "/api/v1/patients/"+first+"/portal-users/"+uid, nil); c != http.StatusNoContent {
		t.Errorf("revoking again = %d, want 204 (nothing changes)", c)
	}
	if c, body := p.staff.do("DELETE", "/api/v1/patients/"+second+"/portal-users/"+uid, nil); c != http.StatusNoContent {
		t.Fatalf("revoke = %d %v", c, body)
	}
	if c, body := parent.do("GET", "/api/v1/me", nil); c != http.StatusUnauthorized {
		t.Errorf("after revoking every grant, GET /me = %d %v, want 401", c, body)
	}
	eventually(t, "staff see the user revoked", func() bool {
		_, list := p.staff.do("GET", "/api/v1/patients/"+first+"/portal-users", nil)
		users, _ := list["portal_users"].([]any)
		return len(users) == 1 && users[0].(map[string]any)["status"] == "revoked"
	})
	p.assertNoSecrets()
}

func TestForgotPasswordAnswersAlikeAndResets(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Zoe", "ren@family.example")
	p.invite(pid, contact)
	tok, _ := p.token("ren@family.example", 1, "/invite")
	c, body := p.accept(tok, "ren's first passphrase")
	if c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	}
	old := p.signedIn(body)

	known := p.anon()
	c1, b1 := known.do("POST", "/api/v1/auth/forgot-password", map[string]string{"email": "ren@family.example"})
	c2, b2 := known.do("POST", "/api/v1/auth/forgot-password", map[string]string{"email": "nobody@family.example"})
	c3, b3 := known.do("POST", "/api/v1/auth/forgot-password", map[string]string{"email": "front@harbor.example"})
	j1, _ := json.Marshal(b1)
	j2, _ := json.Marshal(b2)
	j3, _ := json.Marshal(b3)
	if c1 != http.StatusAccepted || c1 != c2 || c2 != c3 || string(j1) != string(j2) || string(j2) != string(j3) {
		t.Errorf("forgot password answers differ: %d %s / %d %s / %d %s", c1, j1, c2, j2, c3, j3)
	}

	reset, msg := p.token("ren@family.example", 2, "/reset-password")
	if strings.Contains(msg.Text, "Zoe") {
		t.Error("the reset email names the patient")
	}
	p.secrets = append(p.secrets, "ren's new passphrase")
	if c, body := p.anon().do("POST", "/api/v1/auth/reset-password", map[string]string{"token": reset, "password": "iloveyou"}); c != http.StatusBadRequest || code(body) != "password_rejected" {
		t.Errorf("common password = %d %v", c, body)
	}
	if c, body := p.anon().do("POST", "/api/v1/auth/reset-password", map[string]string{"token": reset, "password": "ren's new passphrase"}); c != http.StatusNoContent {
		t.Fatalf("reset = %d %v", c, body)
	}
	if c, body := p.anon().do("POST", "/api/v1/auth/reset-password", map[string]string{"token": reset, "password": "ren's newer passphrase"}); c != http.StatusBadRequest || code(body) != "token_used" {
		t.Errorf("reset link reused = %d %v, want token_used", c, body)
	}
	if c, _ := old.do("GET", "/api/v1/me", nil); c != http.StatusUnauthorized {
		t.Errorf("a session from before the reset still works: %d", c)
	}
	if c, _ := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "ren@family.example", "password": "ren's first passphrase"}); c != http.StatusUnauthorized {
		t.Errorf("the old password still signs in: %d", c)
	}
	c, body = p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "ren@family.example", "password": "ren's new passphrase"})
	if c != http.StatusOK {
		t.Fatalf("login with the new password = %d %v", c, body)
	}
	p.signedIn(body)

	// A reset link expires after an hour.
	p.clock.Advance(2 * time.Minute) // past the one-email-a-minute limit
	known.do("POST", "/api/v1/auth/forgot-password", map[string]string{"email": "ren@family.example"})
	late, _ := p.token("ren@family.example", 3, "/reset-password")
	p.clock.Advance(time.Hour + time.Second)
	if c, body := p.anon().do("POST", "/api/v1/auth/reset-password", map[string]string{"token": late, "password": "ren's newest passphrase"}); c != http.StatusBadRequest || code(body) != "token_expired" {
		t.Errorf("expired reset link = %d %v, want token_expired", c, body)
	}
	// Nothing was sent for the unknown address, nor for the staff address.
	for _, to := range []string{"nobody@family.example", "front@harbor.example"} {
		if got, err := p.mail.Messages(context.Background(), to); err != nil || len(got) != 0 {
			t.Errorf("mail to %s: %d messages, %v", to, len(got), err)
		}
	}
	p.assertNoSecrets()
}

func TestLoginThrottledAfterRepeatedFailures(t *testing.T) {
	p := newPortal(t)
	var last int
	var body map[string]any
	start := time.Now()
	for i := 0; i < 12; i++ {
		last, body = p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "front@harbor.example", "password": "wrong guess number"})
		if last == http.StatusTooManyRequests {
			break
		}
	}
	if last != http.StatusTooManyRequests || code(body) != "too_many_attempts" {
		t.Fatalf("after repeated failures: %d %v, want 429 too_many_attempts", last, body)
	}
	if time.Since(start) < 5*time.Second {
		t.Errorf("failures after the first few were not slowed down (%v for all)", time.Since(start))
	}
	// Refused even with the right password, until the lockout ends.
	if c, _ := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "front@harbor.example", "password": "long enough password"}); c != http.StatusTooManyRequests {
		t.Errorf("right password during the lockout = %d, want 429", c)
	}
	p.clock.Advance(16 * time.Minute)
	if c, body := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "front@harbor.example", "password": "long enough password"}); c != http.StatusOK {
		t.Errorf("after the lockout = %d %v", c, body)
	}
}

func TestOtherClinicsStaffCannotSeePortalUsers(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Ivy", "jo@family.example")
	p.invite(pid, contact)
	other := signIn(t, p.a, p.h, "Other Clinic", "desk@other.example")
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/patients/" + pid + "/portal-users"},
		{"POST", "/api/v1/patients/" + pid + "/portal-invitations"},
		{"DELETE", "/api/v1/patients/" + pid + "/portal-users/" + pid},
	} {
		if c, body := other.do(req.method, req.path, map[string]any{"contact_id": contact}); c != http.StatusNotFound {
			t.Errorf("%s %s by another clinic = %d %v, want 404", req.method, req.path, c, body)
		}
	}
	_ = commands.Meta{}
}

func TestConcurrentAcceptsOfOneLinkOneWins(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Eli", "max@family.example")
	p.invite(pid, contact)
	tok, _ := p.token("max@family.example", 1, "/invite")
	p.secrets = append(p.secrets, "max's own passphrase")
	const n = 6
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _ := p.anon().do("POST", "/api/v1/invitations/accept", map[string]string{"token": tok, "password": "max's own passphrase"})
			codes <- c
		}()
	}
	wg.Wait()
	close(codes)
	won := 0
	for c := range codes {
		switch c {
		case http.StatusOK:
			won++
		case http.StatusBadRequest:
		default:
			t.Errorf("unexpected answer %d", c)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent uses of one link succeeded, want exactly 1", won, n)
	}
}

func TestPortalAdoptionReportingViews(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Ada", "ada@family.example")
	p.invite(pid, contact)
	tok, _ := p.token("ada@family.example", 1, "/invite")
	p.invite(pid, contact) // supersedes the first
	fresh, _ := p.token("ada@family.example", 2, "/invite")
	if fresh == tok {
		t.Fatal("the second invitation has the first one's link")
	}
	if c, body := p.accept(fresh, "ada's own passphrase"); c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	} else {
		p.signedIn(body)
	}
	p.caughtUp()
	ctx := context.Background()
	var issued, accepted, superseded, delivered int64
	if err := p.a.Pool.QueryRow(ctx, `SELECT sum(issued), sum(accepted), sum(superseded), sum(delivered) FROM reporting.portal_invitations_weekly`).Scan(&issued, &accepted, &superseded, &delivered); err != nil {
		t.Fatal(err)
	}
	if issued != 2 || accepted != 1 || superseded != 1 || delivered != 2 {
		t.Errorf("invitations weekly: issued %d accepted %d superseded %d delivered %d; want 2 1 1 2", issued, accepted, superseded, delivered)
	}
	var active, invited int64
	if err := p.a.Pool.QueryRow(ctx, `SELECT active_users, invited_users FROM reporting.portal_active_users`).Scan(&active, &invited); err != nil {
		t.Fatal(err)
	}
	if active != 1 || invited != 0 {
		t.Errorf("active users %d, invited %d; want 1 and 0", active, invited)
	}
	var n int64
	var median float64
	if err := p.a.Pool.QueryRow(ctx, `SELECT accepted, median_hours_to_accept FROM reporting.portal_invitation_acceptance`).Scan(&n, &median); err != nil {
		t.Fatal(err)
	}
	if n != 1 || median < 0 || median > 1 {
		t.Errorf("acceptance: %d accepted, median %.3f h", n, median)
	}
}

func TestChangePasswordKeepsThisSessionAndEndsTheOthers(t *testing.T) {
	p := newPortal(t)
	pid, contact := p.patientWithParent("Kai", "sol@family.example")
	p.invite(pid, contact)
	tok, _ := p.token("sol@family.example", 1, "/invite")
	c, body := p.accept(tok, "sol's first passphrase")
	if c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	}
	here := p.signedIn(body)
	c, body = p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "sol@family.example", "password": "sol's first passphrase"})
	if c != http.StatusOK {
		t.Fatalf("second sign-in = %d %v", c, body)
	}
	elsewhere := p.signedIn(body)
	// A reset link asked for before the change must not undo it.
	p.anon().do("POST", "/api/v1/auth/forgot-password", map[string]string{"email": "sol@family.example"})
	reset, _ := p.token("sol@family.example", 2, "/reset-password")

	change := func(cl client, current, next string) (int, map[string]any) {
		p.secrets = append(p.secrets, current, next)
		return cl.do("POST", "/api/v1/auth/change-password", map[string]string{"current_password": current, "new_password": next})
	}
	for _, tc := range []struct{ current, next, code string }{
		{"not sol's passphrase", "sol's second passphrase", "current_password_wrong"},
		{"sol's first passphrase", "iloveyou", "password_rejected"},
		{"sol's first passphrase", "sol's first passphrase", "password_rejected"},
	} {
		if c, body := change(here, tc.current, tc.next); c != http.StatusBadRequest || code(body) != tc.code {
			t.Errorf("change %q → %q = %d %v, want 400 %s", tc.current, tc.next, c, body, tc.code)
		}
	}
	if c, _ := elsewhere.do("GET", "/api/v1/me", nil); c != http.StatusOK {
		t.Fatalf("a refused change ended a session: %d", c)
	}
	if c, body := p.anon().do("POST", "/api/v1/auth/change-password", map[string]string{"current_password": "x", "new_password": "y"}); c != http.StatusUnauthorized {
		t.Errorf("change without a session = %d %v", c, body)
	}

	c, body = change(here, "sol's first passphrase", "sol's second passphrase")
	if c != http.StatusOK {
		t.Fatalf("change = %d %v", c, body)
	}
	// Signed in afresh: the new token works, every old one (the caller's
	// too, in case it was stolen) is dead.
	renewed := p.signedIn(body)
	if c, me := renewed.do("GET", "/api/v1/me", nil); c != http.StatusOK || me["email"] != "sol@family.example" {
		t.Errorf("the new session = %d %v", c, me)
	}
	for name, old := range map[string]client{"the caller's old": here, "another": elsewhere} {
		if c, _ := old.do("GET", "/api/v1/me", nil); c != http.StatusUnauthorized {
			t.Errorf("%s session outlived the change: %d", name, c)
		}
	}
	if c, _ := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "sol@family.example", "password": "sol's first passphrase"}); c != http.StatusUnauthorized {
		t.Errorf("the old password still signs in: %d", c)
	}
	if c, body := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "sol@family.example", "password": "sol's second passphrase"}); c != http.StatusOK {
		t.Errorf("the new password does not sign in: %d %v", c, body)
	} else {
		p.signedIn(body)
	}
	if c, body := p.anon().do("POST", "/api/v1/auth/reset-password", map[string]string{"token": reset, "password": "sol's third passphrase"}); c != http.StatusBadRequest || code(body) != "token_used" {
		t.Errorf("a reset link from before the change = %d %v, want token_used", c, body)
	}

	// Staff change theirs the same way.
	if c, body := change(p.staff, "long enough password", "a longer staff password"); c != http.StatusOK || body["account"].(map[string]any)["kind"] != "staff" {
		t.Fatalf("staff change = %d %v", c, body)
	} else {
		p.signedIn(body)
	}
	if c, body := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "front@harbor.example", "password": "a longer staff password"}); c != http.StatusOK {
		t.Errorf("staff sign-in with the new password = %d %v", c, body)
	} else {
		p.signedIn(body)
	}

	// The log says who changed a password and when (a staff member's with
	// their clinic), never the password.
	changes := 0
	for _, typ := range []string{"PortalPasswordSet", "StaffPasswordSet"} {
		for _, e := range p.events(typ) {
			var d struct {
				Via string `json:"via"`
			}
			if json.Unmarshal(e.Data, &d) == nil && d.Via == "change" {
				changes++
				if typ == "StaffPasswordSet" && e.Metadata.ClinicID == "" {
					t.Error("a staff password change has no clinic in its metadata")
				}
			}
		}
	}
	if changes != 2 {
		t.Errorf("password changes recorded = %d, want 2", changes)
	}
	p.assertNoSecrets()
}

// TestChangePasswordGuessesAreThrottled: an open session cannot be used to
// guess the current password; the guesses count on the account like failed
// sign-ins, and the account's sign-in is locked out with them.
func TestChangePasswordGuessesAreThrottled(t *testing.T) {
	p := newPortal(t)
	var last int
	var body map[string]any
	for i := 0; i < 12; i++ {
		guess := "guess number " + strconv.Itoa(i)
		p.secrets = append(p.secrets, guess)
		last, body = p.staff.do("POST", "/api/v1/auth/change-password", map[string]string{"current_password": guess, "new_password": "a longer staff password"})
		if last == http.StatusTooManyRequests {
			break
		}
		if last != http.StatusBadRequest || code(body) != "current_password_wrong" {
			t.Fatalf("guess %d = %d %v", i, last, body)
		}
	}
	if last != http.StatusTooManyRequests || code(body) != "too_many_attempts" {
		t.Fatalf("after repeated wrong passwords: %d %v, want 429 too_many_attempts", last, body)
	}
	if c, _ := p.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "front@harbor.example", "password": "long enough password"}); c != http.StatusTooManyRequests {
		t.Errorf("sign-in with the right password during the lockout = %d, want 429", c)
	}
	p.clock.Advance(16 * time.Minute)
	p.secrets = append(p.secrets, "a longer staff password")
	if c, body := p.staff.do("POST", "/api/v1/auth/change-password", map[string]string{"current_password": "long enough password", "new_password": "a longer staff password"}); c != http.StatusOK {
		t.Errorf("after the lockout = %d %v", c, body)
	} else {
		p.signedIn(body)
	}
	p.assertNoSecrets()
}
