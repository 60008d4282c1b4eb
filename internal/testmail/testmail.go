// Package testmail gives a test a real SMTP server: a mailpit process of its
// own (github.com/axllent/mailpit), started on free ports and stopped when
// the test ends, and reads what it received through mailpit's REST API.
//
// mailpit is found on PATH, then in $(go env GOBIN) and $(go env GOPATH)/bin
// (PORTICO_MAILPIT names the binary explicitly). Without it the test is
// skipped, unless CI=true or PORTICO_REQUIRE_MAILPIT=1, where it fails.
// Install it with:
//
//	go install github.com/axllent/mailpit@v1.33.1
package testmail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-health/portico/internal/testproc"
)

// InstallHint is the command that installs the pinned mailpit.
const InstallHint = "go install github.com/axllent/mailpit@v1.33.1"

// Mailpit is a running mailpit process owned by one test.
type Mailpit struct {
	smtpAddr string // 127.0.0.1:port
	apiBase  string // http://127.0.0.1:port
	user     string // SMTP credentials required, when WithAuth was given
	pass     string
	tls      TLSMode
	roots    *x509.CertPool
	http     *http.Client
}

// TLSMode says how the server speaks TLS on its SMTP port.
type TLSMode int

const (
	NoTLS       TLSMode = iota // plain SMTP (the default, like a developer's mailpit)
	StartTLS                   // plain SMTP offering STARTTLS (optional for the client)
	ImplicitTLS                // TLS from the first byte (smtps://)
)

type options struct {
	user, pass string
	tls        TLSMode
}

// Option changes how Start runs mailpit.
type Option func(*options)

// WithAuth makes the server require SMTP AUTH (PLAIN or LOGIN) with user and
// pass (no whitespace: mailpit cannot take it); SMTPURL then carries them.
// Without it the server accepts any credentials, and none.
func WithAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// WithTLS gives the server a fresh self-signed certificate for 127.0.0.1;
// clients must trust RootCAs.
func WithTLS(mode TLSMode) Option {
	return func(o *options) { o.tls = mode }
}

// Start runs a mailpit for t and returns once it accepts SMTP and answers its
// API. It stops when t ends (cleanup), and keeps its messages in a database
// under t.TempDir, so nothing outlives the test.
func Start(t testing.TB, opts ...Option) *Mailpit {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin := testproc.Binary(t, "PORTICO_MAILPIT", "mailpit", InstallHint)
	dir := t.TempDir() // registered before the process's cleanup, so removed after it
	m := &Mailpit{user: o.user, pass: o.pass, tls: o.tls, http: &http.Client{Timeout: 10 * time.Second}}
	var extra []string
	if o.user != "" {
		// mailpit splits its credentials file at whitespace, and a user ends at ":".
		if strings.ContainsAny(o.user+o.pass, " \t\r\n") || strings.Contains(o.user, ":") {
			t.Fatalf("testmail: WithAuth: mailpit cannot take whitespace in credentials, nor ':' in the user")
		}
		f := filepath.Join(dir, "smtp-auth")
		if err := os.WriteFile(f, []byte(o.user+":"+o.pass+"\n"), 0o600); err != nil {
			t.Fatalf("testmail: %v", err)
		}
		extra = append(extra, "--smtp-auth-file", f)
	} else {
		extra = append(extra, "--smtp-auth-accept-any")
	}
	if o.tls == NoTLS {
		// Credentials over plain SMTP, as to a developer's mailpit; with a
		// certificate, mailpit wants TLS before AUTH.
		extra = append(extra, "--smtp-auth-allow-insecure")
	}
	if o.tls != NoTLS {
		cert, key, roots, err := selfSigned(dir)
		if err != nil {
			t.Fatalf("testmail: certificate: %v", err)
		}
		m.roots = roots
		extra = append(extra, "--smtp-tls-cert", cert, "--smtp-tls-key", key)
		if o.tls == ImplicitTLS {
			extra = append(extra, "--smtp-require-tls")
		}
	}

	// Free ports are found by listening on :0 and closing; another process
	// may take one before mailpit binds it, so try a few times.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		smtpPort, httpPort, err := freePorts()
		if err != nil {
			t.Fatalf("testmail: %v", err)
		}
		m.smtpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort))
		m.apiBase = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
		args := append([]string{
			"--smtp", m.smtpAddr,
			"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
			"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", attempt)),
			"--max", "0", // keep every message
			"--smtp-disable-rdns",
			"--disable-version-check",
			"--quiet",
		}, extra...)
		if lastErr = m.run(t, bin, args); lastErr == nil {
			return m
		}
	}
	t.Fatalf("testmail: mailpit did not start: %v", lastErr)
	return nil
}

// run starts bin and waits until it is ready; on failure the process is gone.
func (m *Mailpit) run(t testing.TB, bin string, args []string) error {
	return testproc.Run(t, "mailpit", bin, args, m.ready)
}

func (m *Mailpit) ready() bool {
	resp, err := m.http.Get(m.apiBase + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", m.smtpAddr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// SMTPURL is the server's address for mail.NewSMTP / PORTAL_SMTP_URL:
// smtp://127.0.0.1:PORT, smtps:// under ImplicitTLS, with the credentials of
// WithAuth when given.
func (m *Mailpit) SMTPURL() string {
	u := url.URL{Scheme: "smtp", Host: m.smtpAddr}
	if m.tls == ImplicitTLS {
		u.Scheme = "smtps"
	}
	if m.user != "" {
		u.User = url.UserPassword(m.user, m.pass)
	}
	return u.String()
}

// SMTPAddr is the server's SMTP host:port.
func (m *Mailpit) SMTPAddr() string { return m.smtpAddr }

// APIURL is the base of mailpit's web UI and REST API (http://127.0.0.1:PORT),
// handy for looking at a failing test's mail in a browser.
func (m *Mailpit) APIURL() string { return m.apiBase }

// RootCAs trusts the server's certificate under WithTLS; nil otherwise.
func (m *Mailpit) RootCAs() *x509.CertPool { return m.roots }

// Summary is a received message as listed, without its bodies.
type Summary struct {
	ID        string // mailpit's id, for Message
	MessageID string // the Message-ID header, without angle brackets
	From      string
	To        []string
	Subject   string
	Created   time.Time
}

// Message is a received message in full.
type Message struct {
	ID        string // mailpit's id
	MessageID string // the Message-ID header, without angle brackets
	From      string
	To        []string
	Subject   string
	Date      time.Time
	Text      string // the text/plain body, decoded, lines ending in "\n"
	HTML      string // the text/html body, decoded, lines ending in "\n"
}

type apiAddress struct{ Name, Address string }

type apiSummary struct {
	ID, MessageID, Subject string
	From                   *apiAddress
	To, Cc, Bcc            []apiAddress
	Created                time.Time
}

type apiList struct {
	Total         int          `json:"total"`
	MessagesCount int          `json:"messages_count"`
	Start         int          `json:"start"`
	Messages      []apiSummary `json:"messages"`
}

type apiMessage struct {
	ID, MessageID, Subject, Text, HTML string
	From                               *apiAddress
	To                                 []apiAddress
	Date                               time.Time
}

// Messages lists the messages received for to (matched exactly, ignoring
// case, against To, Cc and Bcc; "" lists every message), oldest first.
func (m *Mailpit) Messages(ctx context.Context, to string) ([]Summary, error) {
	const page = 200
	var all []apiSummary
	for start := 0; ; start += page {
		var l apiList
		if err := m.getJSON(ctx, fmt.Sprintf("/api/v1/messages?start=%d&limit=%d", start, page), &l); err != nil {
			return nil, err
		}
		all = append(all, l.Messages...)
		if len(l.Messages) < page {
			break
		}
	}
	var out []Summary
	for i := len(all) - 1; i >= 0; i-- { // the API lists newest first
		s := all[i]
		if to != "" && !addressedTo(s, to) {
			continue
		}
		out = append(out, Summary{
			ID: s.ID, MessageID: s.MessageID, From: addr(s.From), To: addrs(s.To),
			Subject: s.Subject, Created: s.Created,
		})
	}
	return out, nil
}

// Message fetches one message in full by mailpit's id.
func (m *Mailpit) Message(ctx context.Context, id string) (Message, error) {
	var a apiMessage
	if err := m.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id), &a); err != nil {
		return Message{}, err
	}
	return Message{
		ID: a.ID, MessageID: a.MessageID, From: addr(a.From), To: addrs(a.To),
		Subject: a.Subject, Date: a.Date, Text: lf(a.Text), HTML: lf(a.HTML),
	}, nil
}

// Headers fetches the raw headers of one message by mailpit's id.
func (m *Mailpit) Headers(ctx context.Context, id string) (map[string][]string, error) {
	h := map[string][]string{}
	err := m.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &h)
	return h, err
}

// WaitFor waits until at least n messages for to have arrived and returns
// all of them (possibly more than n), oldest first, in full. It fails t when
// timeout passes first, saying what did arrive.
func (m *Mailpit) WaitFor(t testing.TB, to string, n int, timeout time.Duration) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		got []Summary
		err error
	)
	for {
		got, err = m.Messages(ctx, to)
		if err == nil && len(got) >= n {
			break
		}
		select {
		case <-ctx.Done():
			var subjects []string
			for _, s := range got {
				subjects = append(subjects, fmt.Sprintf("%q", s.Subject))
			}
			t.Fatalf("testmail: waited %v for %d message(s) to %s: got %d %v (last error: %v)",
				timeout, n, to, len(got), subjects, err)
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	out := make([]Message, 0, len(got))
	for _, s := range got {
		msg, err := m.Message(context.Background(), s.ID)
		if err != nil {
			t.Fatalf("testmail: message %s: %v", s.ID, err)
		}
		out = append(out, msg)
	}
	return out
}

// Link is the package-level Link, as a method for convenience.
func (m *Mailpit) Link(t testing.TB, msg Message, pathPrefix string) string {
	t.Helper()
	return Link(t, msg, pathPrefix)
}

var urlPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

// Link returns the first URL in msg's text body that begins with prefix — a
// whole URL prefix ("http://127.0.0.1:8080/invite") or, starting with "/", a
// path prefix matched against the URL's path and query ("/invite?token=").
// It fails t when there is none.
func Link(t testing.TB, msg Message, prefix string) string {
	t.Helper()
	for _, raw := range urlPattern.FindAllString(msg.Text, -1) {
		raw = strings.TrimRight(raw, ".,;:!?)]")
		if strings.HasPrefix(raw, prefix) {
			return raw
		}
		if strings.HasPrefix(prefix, "/") {
			if u, err := url.Parse(raw); err == nil && strings.HasPrefix(u.RequestURI(), prefix) {
				return raw
			}
		}
	}
	t.Fatalf("testmail: no link starting with %q in the text of %q:\n%s", prefix, msg.Subject, msg.Text)
	return ""
}

func (m *Mailpit) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.apiBase+path, nil)
	if err != nil {
		return err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// lf turns the CRLF line ends of a received body into "\n", as the sender
// wrote them.
func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func addressedTo(s apiSummary, to string) bool {
	for _, list := range [][]apiAddress{s.To, s.Cc, s.Bcc} {
		for _, a := range list {
			if strings.EqualFold(a.Address, to) {
				return true
			}
		}
	}
	return false
}

func addr(a *apiAddress) string {
	if a == nil {
		return ""
	}
	return a.Address
}

func addrs(l []apiAddress) []string {
	out := make([]string, 0, len(l))
	for _, a := range l {
		out = append(out, a.Address)
	}
	return out
}

func freePorts() (int, int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1], nil
}

// selfSigned writes a certificate for 127.0.0.1 and localhost into dir.
func selfSigned(dir string) (certFile, keyFile string, roots *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "testmail"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots, nil
}
