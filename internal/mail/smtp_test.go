package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-health/portico/internal/testmail"
)

func TestNewSMTPRejectsBadSettings(t *testing.T) {
	for _, c := range []struct{ url, from, want string }{
		{"http://127.0.0.1:25", "p@x.example", "want smtp://"},
		{"smtp://", "p@x.example", "no host"},
		{"smtp://127.0.0.1:99999", "p@x.example", "bad port"},
		{"smtp://127.0.0.1:25?tls=no", "p@x.example", "no path, query"},
		{"smtp://127.0.0.1:25/x", "p@x.example", "no path, query"},
		{"smtp://127.0.0.1:25", "not an address", "PORTAL_EMAIL_FROM"},
		{"smtp://user:hunter2@127.0.0.1:25/%zz", "p@x.example", "not a valid URL"},
		{"smtp://user:hunter2@[::1", "p@x.example", "not a valid URL"},
	} {
		_, err := NewSMTP(c.url, c.from)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSMTP(%q, %q) = %v, want an error with %q", c.url, c.from, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
	for _, ok := range []string{"smtp://127.0.0.1:1025", "smtp://mail.example", "smtps://u:p%40ss@mail.example:465/", "smtp://[::1]:25"} {
		if _, err := NewSMTP(ok, "Clinic Portal <portal@clinic.example>"); err != nil {
			t.Errorf("NewSMTP(%q): %v", ok, err)
		}
	}
}

func invitationTo(to, id string) Message {
	m := Invitation("Sunrise Therapy", "http://127.0.0.1:8080/invite?token=SECRET-tok_123", time.Now().Add(24*time.Hour))
	m.To, m.ID = to, id
	return m
}

func TestSMTPDeliversToMailpit(t *testing.T) {
	mp := testmail.Start(t)
	s, err := NewSMTP(mp.SMTPURL(), "Sunrise Therapy portal <portal@clinic.example>")
	if err != nil {
		t.Fatal(err)
	}
	m := invitationTo("parent@example.com", "0191c5a2-7e4b-7c1e-9f1a-2b3c4d5e6f70")
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "parent@example.com", 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("got %d messages", len(got))
	}
	g := got[0]
	if g.Subject != m.Subject || g.From != "portal@clinic.example" || len(g.To) != 1 || g.To[0] != "parent@example.com" {
		t.Fatalf("envelope: %+v", g)
	}
	if g.MessageID != "0191c5a2-7e4b-7c1e-9f1a-2b3c4d5e6f70@clinic.example" {
		t.Fatalf("Message-ID %q", g.MessageID)
	}
	if strings.TrimSpace(g.Text) != strings.TrimSpace(m.Text) {
		t.Fatalf("text body:\n%s\nwant:\n%s", g.Text, m.Text)
	}
	if !strings.Contains(g.HTML, `<html lang="en">`) || !strings.Contains(g.HTML, "Accept the invitation") {
		t.Fatalf("HTML body:\n%s", g.HTML)
	}
	if l := testmail.Link(t, g, "/invite?token="); l != "http://127.0.0.1:8080/invite?token=SECRET-tok_123" {
		t.Fatalf("link %q", l)
	}
	h, err := mp.Headers(context.Background(), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v := h["Auto-Submitted"]; len(v) != 1 || v[0] != "auto-generated" {
		t.Fatalf("Auto-Submitted = %v (headers %v)", v, h)
	}

	// The same id again is recognisably the same message.
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	again := mp.WaitFor(t, "parent@example.com", 2, 10*time.Second)
	if again[1].MessageID != g.MessageID {
		t.Fatalf("resend has Message-ID %q, want %q", again[1].MessageID, g.MessageID)
	}
	// Without an id, each message gets a fresh one.
	m.ID = ""
	_ = s.Send(context.Background(), m)
	_ = s.Send(context.Background(), m)
	fresh := mp.WaitFor(t, "parent@example.com", 4, 10*time.Second)
	if fresh[2].MessageID == "" || fresh[2].MessageID == fresh[3].MessageID || fresh[2].MessageID == g.MessageID {
		t.Fatalf("generated Message-IDs %q %q", fresh[2].MessageID, fresh[3].MessageID)
	}
}

func TestSMTPAuthenticates(t *testing.T) {
	mp := testmail.Start(t, testmail.WithAuth("portico", "p@ss/w:rd%"))
	s, err := NewSMTP(mp.SMTPURL(), "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), invitationTo("a@example.com", "evt-1")); err != nil {
		t.Fatal(err)
	}
	mp.WaitFor(t, "a@example.com", 1, 10*time.Second)

	// Wrong credentials fail, and the error carries neither body nor token.
	u, err := url.Parse(mp.SMTPURL())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := u.User.Password(); p != "p@ss/w:rd%" {
		t.Fatalf("SMTPURL %q carries password %q", mp.SMTPURL(), p)
	}
	u.User = url.UserPassword("portico", "wrong")
	bad, err := NewSMTP(u.String(), "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Send(context.Background(), invitationTo("b@example.com", "evt-2"))
	if err == nil {
		t.Fatal("sent with a wrong password")
	}
	checkErrorText(t, err)
	// No credentials at all: the server wants AUTH.
	none, _ := NewSMTP("smtp://"+mp.SMTPAddr(), "portal@clinic.example")
	err = none.Send(context.Background(), invitationTo("b@example.com", "evt-3"))
	if err == nil {
		t.Fatal("sent without credentials to a server that wants them")
	}
	checkErrorText(t, err)
}

func checkErrorText(t *testing.T, err error) {
	t.Helper()
	for _, secret := range []string{"SECRET-tok", "invites you", "Hello", "p@ss", "wrong"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error reveals %q: %v", secret, err)
		}
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	mp := testmail.Start(t, testmail.WithTLS(testmail.ImplicitTLS), testmail.WithAuth("u", "p"))
	if !strings.HasPrefix(mp.SMTPURL(), "smtps://") {
		t.Fatalf("SMTPURL %q", mp.SMTPURL())
	}
	s, err := newSMTP(mp.SMTPURL(), "portal@clinic.example", &tls.Config{RootCAs: mp.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), invitationTo("tls@example.com", "evt-tls")); err != nil {
		t.Fatal(err)
	}
	mp.WaitFor(t, "tls@example.com", 1, 10*time.Second)

	// The system roots do not trust the test certificate: no silent fallback.
	untrusting, err := NewSMTP(mp.SMTPURL(), "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusting.Send(context.Background(), invitationTo("tls@example.com", "evt-x")); err == nil {
		t.Fatal("sent to an untrusted certificate")
	}
}

func TestSMTPUpgradesWithSTARTTLS(t *testing.T) {
	mp := testmail.Start(t, testmail.WithTLS(testmail.StartTLS), testmail.WithAuth("u", "p"))
	// mailpit with a certificate takes AUTH only after STARTTLS, so a
	// delivery proves the upgrade happened.
	s, err := newSMTP(mp.SMTPURL(), "portal@clinic.example", &tls.Config{RootCAs: mp.RootCAs()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), invitationTo("starttls@example.com", "evt-s")); err != nil {
		t.Fatal(err)
	}
	mp.WaitFor(t, "starttls@example.com", 1, 10*time.Second)
}

func TestSMTPFailsFastWhenNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s, err := NewSMTP("smtp://"+addr, "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Send(context.Background(), invitationTo("a@example.com", "evt"))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Send = %v after %v", err, time.Since(start))
	}
	checkErrorText(t, err)
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "evt@clinic.example") {
		t.Fatalf("error names neither server nor message: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, invitationTo("a@example.com", "evt")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send on a done context = %v", err)
	}
}

func TestSMTPTimesOutOnASilentServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the dial deadline")
	}
	// A server that accepts and never greets: the context deadline ends the wait.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s, _ := NewSMTP("smtp://"+l.Addr().String(), "portal@clinic.example")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Send(ctx, invitationTo("a@example.com", "evt")); err == nil {
		t.Fatal("sent to a silent server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestSMTPRejectsHeaderInjectionAndEmptyMessages(t *testing.T) {
	s, err := NewSMTP("smtp://127.0.0.1:1", "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Message{
		{To: "a@example.com\r\nBcc: x@evil.example", Subject: "s", Text: "t"},
		{To: "a@example.com", Subject: "s\r\nBcc: x@evil.example", Text: "t"},
		{To: "", Subject: "s", Text: "t"},
		{To: "not an address", Subject: "s", Text: "t"},
		{To: "a@example.com", Subject: "s"},
	} {
		if err := s.Send(context.Background(), m); err == nil || strings.Contains(err.Error(), "dial") {
			t.Errorf("Send(%+v) = %v, want a refusal before dialing", m, err)
		}
	}
}

// Credentials never cross an unencrypted connection to another host: a
// remote server without STARTTLS gets no AUTH, and the send fails.
func TestSMTPKeepsCredentialsOffPlainRemoteConnections(t *testing.T) {
	mp := testmail.Start(t, testmail.WithAuth("u", "p"))
	// 127.0.0.2 reaches this machine, but is not "localhost" to the client.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", mp.SMTPAddr())
			if err != nil {
				_ = c.Close()
				return
			}
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	s, err := NewSMTP("smtp://u:p@"+l.Addr().String(), "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), invitationTo("a@example.com", "evt"))
	if err == nil || !strings.Contains(err.Error(), "unencrypted") {
		t.Fatalf("Send = %v, want a refusal to authenticate unencrypted", err)
	}
}

func TestSMTPConcurrentSends(t *testing.T) {
	mp := testmail.Start(t)
	s, err := NewSMTP(mp.SMTPURL(), "portal@clinic.example")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			errs <- s.Send(context.Background(), invitationTo("many@example.com", fmt.Sprintf("evt-%d", i)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := mp.WaitFor(t, "many@example.com", 8, 10*time.Second)
	ids := map[string]bool{}
	for _, g := range got {
		ids[g.MessageID] = true
	}
	if len(ids) != 8 {
		t.Fatalf("Message-IDs %v", ids)
	}
}
