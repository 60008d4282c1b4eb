package testmail

import (
	"context"
	"crypto/tls"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, m *Mailpit, auth smtp.Auth, to, subject, body string) {
	t.Helper()
	msg := "From: sender@example.test\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@example.test>\r\n\r\n" + body + "\r\n"
	if err := smtp.SendMail(m.SMTPAddr(), auth, "sender@example.test", []string{to}, []byte(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func TestStartWaitForAndLink(t *testing.T) {
	m := Start(t)
	if !strings.HasPrefix(m.SMTPURL(), "smtp://127.0.0.1:") {
		t.Fatalf("SMTPURL = %q", m.SMTPURL())
	}
	send(t, m, nil, "a@example.test", "first", "Open https://portal.example/invite?token=abc123. Thanks")
	send(t, m, nil, "ba@example.test", "other", "not for a")
	send(t, m, nil, "A@Example.test", "second", "see http://127.0.0.1:8080/reset-password?token=xyz")

	got := m.WaitFor(t, "a@example.test", 2, 10*time.Second)
	if len(got) != 2 || got[0].Subject != "first" || got[1].Subject != "second" {
		t.Fatalf("WaitFor = %+v, want first then second, exactly", got)
	}
	if got[0].MessageID != "first@example.test" || got[0].From != "sender@example.test" ||
		len(got[0].To) != 1 || got[0].To[0] != "a@example.test" {
		t.Fatalf("message fields: %+v", got[0])
	}
	if l := Link(t, got[0], "/invite"); l != "https://portal.example/invite?token=abc123" {
		t.Fatalf("Link by path = %q", l)
	}
	if l := m.Link(t, got[1], "http://127.0.0.1:8080/reset-password?token="); l != "http://127.0.0.1:8080/reset-password?token=xyz" {
		t.Fatalf("Link by URL = %q", l)
	}

	all, err := m.Messages(context.Background(), "")
	if err != nil || len(all) != 3 {
		t.Fatalf("Messages(all) = %d, %v", len(all), err)
	}
	h, err := m.Headers(context.Background(), got[0].ID)
	if err != nil || len(h["Message-Id"])+len(h["Message-ID"]) == 0 {
		t.Fatalf("Headers = %v, %v", h, err)
	}
}

func TestAuthRequired(t *testing.T) {
	m := Start(t, WithAuth("user", "secret"))
	if !strings.Contains(m.SMTPURL(), "user:secret@") {
		t.Fatalf("SMTPURL = %q", m.SMTPURL())
	}
	msg := []byte("Subject: x\r\n\r\nbody\r\n")
	if err := smtp.SendMail(m.SMTPAddr(), nil, "s@example.test", []string{"r@example.test"}, msg); err == nil {
		t.Fatal("sent without credentials")
	}
	send(t, m, smtp.PlainAuth("", "user", "secret", "127.0.0.1"), "r@example.test", "authed", "hello")
	m.WaitFor(t, "r@example.test", 1, 10*time.Second)
}

func TestImplicitTLS(t *testing.T) {
	m := Start(t, WithTLS(ImplicitTLS))
	if !strings.HasPrefix(m.SMTPURL(), "smtps://") || m.RootCAs() == nil {
		t.Fatalf("SMTPURL = %q, roots %v", m.SMTPURL(), m.RootCAs())
	}
	conn, err := tls.Dial("tcp", m.SMTPAddr(), &tls.Config{RootCAs: m.RootCAs(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("s@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("tls@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: over tls\r\n\r\nhello\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	if got := m.WaitFor(t, "tls@example.test", 1, 10*time.Second); got[0].Subject != "over tls" {
		t.Fatalf("got %+v", got)
	}
}

func TestEachTestHasItsOwnServer(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.SMTPAddr() == b.SMTPAddr() || a.APIURL() == b.APIURL() {
		t.Fatalf("shared ports: %s %s", a.SMTPAddr(), b.SMTPAddr())
	}
	send(t, a, nil, "x@example.test", "only-a", "hi")
	a.WaitFor(t, "x@example.test", 1, 10*time.Second)
	if got, err := b.Messages(context.Background(), ""); err != nil || len(got) != 0 {
		t.Fatalf("b has %d messages, %v", len(got), err)
	}
}

func TestLinkFindsNothing(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		Link(ft, Message{Subject: "s", Text: "no links at all"}, "/invite")
	}()
	if !ft.failed {
		t.Fatal("Link did not fail on a message without the link")
	}
}

// fakeT records Fatalf instead of ending the real test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
