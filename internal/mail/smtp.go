package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// smtpTimeout bounds the dial and then each phase of the SMTP conversation
// (go-mail renews the connection deadline per message): a server that stops
// answering fails the Send instead of hanging it.
const smtpTimeout = 20 * time.Second

// NewSMTP returns a Sender that delivers through the SMTP server of rawURL
// (PORTAL_SMTP_URL) with from (PORTAL_EMAIL_FROM, "addr" or "Name <addr>")
// as the sender:
//
//   - smtp://host:port — plain SMTP, upgraded with STARTTLS when the server
//     offers it (a server that offers none, such as mailpit, is fine);
//   - smtp://user:pass@host:port — the same, authenticating with PLAIN or
//     LOGIN (user and password percent-encoded). Credentials are only sent
//     over TLS or to localhost: a remote server without STARTTLS fails;
//   - smtps://[user:pass@]host:port — implicit TLS from the first byte.
//
// The port defaults to 25 for smtp and 465 for smtps. Each Send opens its own
// connection, so the Sender is safe for concurrent use.
func NewSMTP(rawURL, from string) (Sender, error) {
	return newSMTP(rawURL, from, nil)
}

type smtpSender struct {
	host        string // as go-mail dials it
	addr        string // host:port, for errors
	opts        []gomail.Option
	implicitTLS bool
	tls         *tls.Config
	from        string
	domain      string // right-hand side of generated Message-IDs
}

// newSMTP is NewSMTP with a TLS configuration (tests trust their own CA);
// nil means the system roots.
func newSMTP(rawURL, from string, tlsConf *tls.Config) (*smtpSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included: say less.
		return nil, errors.New("mail: PORTAL_SMTP_URL is not a valid URL")
	}
	var port int
	var opts []gomail.Option
	implicitTLS := false
	switch u.Scheme {
	case "smtp":
		port = 25
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtps":
		port = 465
		implicitTLS = true
		// WithSSL keeps go-mail from trying STARTTLS inside TLS; the TLS
		// itself is our dialer's (Send), which go-mail's smtp client sees.
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, errors.New("mail: PORTAL_SMTP_URL: want smtp://host:port or smtps://host:port")
	}
	hostname := u.Hostname()
	if hostname == "" {
		return nil, errors.New("mail: PORTAL_SMTP_URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("mail: PORTAL_SMTP_URL: bad port %q", p)
		}
		port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("mail: PORTAL_SMTP_URL: want no path, query or fragment")
	}
	host := hostname
	if strings.Contains(host, ":") { // an IPv6 literal: go-mail joins host and port with a colon
		host = "[" + host + "]"
	}

	var tc *tls.Config
	if tlsConf != nil {
		tc = tlsConf.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = hostname
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	opts = append(opts,
		gomail.WithPort(port),
		gomail.WithTimeout(smtpTimeout),
		gomail.WithTLSConfig(tc),
	)
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(u.User.Username()),
			gomail.WithPassword(pass),
		)
	}

	fromAddr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: PORTAL_EMAIL_FROM %q is not an email address", from)
	}
	s := &smtpSender{
		host:        host,
		addr:        fmt.Sprintf("%s:%d", host, port),
		opts:        opts,
		implicitTLS: implicitTLS,
		tls:         tc,
		from:        fromAddr.String(),
		domain:      fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:],
	}
	// Apply the options once now, so a bad setting fails at start-up.
	if _, err := gomail.NewClient(s.host, s.opts...); err != nil {
		return nil, fmt.Errorf("mail: PORTAL_SMTP_URL: %w", err)
	}
	return s, nil
}

// Send delivers m. Its error names the server and the message id, never the
// body. ctx bounds the whole conversation: when it is done, the connection
// is closed under go-mail and Send returns ctx's error.
func (s *smtpSender) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.TrimSpace(m.To) == "" {
		return errors.New("mail: message without recipient")
	}
	if !oneLine(m.To) || !oneLine(m.Subject) || !oneLine(m.ID) {
		return errors.New("mail: line break in a header field")
	}
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	dial, release := s.dialer(ctx)
	defer release()
	client, err := gomail.NewClient(s.host, append(s.opts[:len(s.opts):len(s.opts)], gomail.WithDialContextFunc(dial))...)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		e := &sendError{
			text: fmt.Sprintf("mail: sending %s via %s: %s", msg.GetMessageID(), s.addr, Redact(err.Error())),
			errs: []error{err},
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			e.text = fmt.Sprintf("mail: sending %s via %s: %v", msg.GetMessageID(), s.addr, ctxErr)
			e.errs = []error{ctxErr, err}
		}
		return e
	}
	return nil
}

// dialer returns go-mail's dial function for one Send: TCP, then TLS for
// smtps, with the connection closed as soon as ctx is done (go-mail itself
// only heeds ctx while dialing). release stops watching ctx.
func (s *smtpSender) dialer(ctx context.Context) (gomail.DialContextFunc, func()) {
	var (
		mu    sync.Mutex
		stops []func() bool
	)
	dial := func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		mu.Lock()
		stops = append(stops, stop)
		mu.Unlock()
		if !s.implicitTLS {
			return conn, nil
		}
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(dialCtx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, stop := range stops {
			stop()
		}
	}
	return dial, release
}

func (s *smtpSender) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.from); err != nil {
		return nil, fmt.Errorf("mail: sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, errors.New("mail: recipient is not an email address")
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if m.ID != "" {
		msg.SetMessageIDWithValue(messageIDValue(m.ID, s.domain))
	} else {
		msg.SetMessageID()
	}
	msg.SetUserAgent("Portico")
	// RFC 3834: no vacation auto-replies to a machine's email.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	switch {
	case m.Text != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		if m.HTML != "" {
			msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
		}
	case m.HTML != "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		return nil, errors.New("mail: message without body")
	}
	return msg, nil
}

// sendError keeps go-mail's error (and ctx's) for errors.Is/As — e.g.
// *gomail.SendError, whose IsTemp tells a retryable failure — behind a
// redacted text.
type sendError struct {
	text string
	errs []error
}

func (e *sendError) Error() string   { return e.text }
func (e *sendError) Unwrap() []error { return e.errs }
