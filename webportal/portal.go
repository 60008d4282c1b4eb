// Package webportal is Portico's own web portal: server-rendered pages for
// portal users (patients, parents, other designated people) — sign-in,
// "Forgot password", accepting an invitation, resetting a password, and each
// linked patient's appointments, documents, home activities, intake forms,
// billing and access log.
//
// The portal is a client of the public API and nothing else: every page is
// built from calls to /api/v1 made in-process against the API's
// http.Handler, with the browser's session token as the bearer token and
// the browser's address, user agent and a correlation id forwarded, so the
// API authorises and audits every PHI access exactly as for any other
// front end. It never reads the database. See docs/webportal.md.
package webportal

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the portal needs.
type Config struct {
	// API is the public API's handler (readapi.New). Page data comes only
	// from it; /api/, /healthz, /readyz and /metrics are passed to it.
	API http.Handler
	// PublicURL is where browsers reach the portal (PORTAL_PUBLIC_URL). An
	// https URL, or any host that is not loopback, makes cookies Secure.
	PublicURL string
	// Logger receives failures (never tokens nor PHI); nil is slog.Default.
	Logger *slog.Logger
	// CSRFKey signs the forms' anti-forgery tokens. Every process that
	// serves the same portal needs the same key; nil draws a random key per
	// process (fine for one process).
	CSRFKey []byte
	// UploadLimit bounds a returned intake form, in bytes; 0 is 10 MiB, the
	// API's default. The API checks the file again (size and type).
	UploadLimit int64
	// StripePublishableKey (pk_…) enables the card form; empty, the portal
	// says card payments are not available here.
	StripePublishableKey string
	// Location is the time zone times are shown in; nil is time.Local.
	Location *time.Location
	// ClinicName titles the pages; empty is "Patient portal".
	ClinicName string
}

// Portal serves the pages.
type Portal struct {
	cfg    Config
	log    *slog.Logger
	pages  map[string]*template.Template
	secure bool
	static http.Handler
	mux    *http.ServeMux
}

// New builds the portal's handler: its pages, its static files, and the
// API's own paths passed through.
func New(cfg Config) (*Portal, error) {
	if cfg.API == nil {
		return nil, fmt.Errorf("webportal: Config.API is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.CSRFKey) == 0 {
		cfg.CSRFKey = make([]byte, 32)
		if _, err := rand.Read(cfg.CSRFKey); err != nil {
			return nil, err
		}
	}
	if cfg.UploadLimit <= 0 {
		cfg.UploadLimit = 10 << 20
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.ClinicName == "" {
		cfg.ClinicName = "Patient portal"
	}
	secure, err := secureCookies(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, log: cfg.Logger, pages: pages, secure: secure, static: http.StripPrefix("/static/", http.FileServerFS(sub))}
	p.routes()
	return p, nil
}

// secureCookies says whether cookies must be Secure: always, except for a
// plain-http portal on a loopback address (a developer's machine, tests).
func secureCookies(publicURL string) (bool, error) {
	if publicURL == "" {
		return false, nil
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, fmt.Errorf("webportal: PublicURL %q: want an http(s) URL", publicURL)
	}
	if u.Scheme == "https" {
		return true, nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return false, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return false, nil
	}
	return true, nil
}

func (p *Portal) routes() {
	m := http.NewServeMux()
	api := p.cfg.API
	for _, path := range []string{"/api/", "/healthz", "/readyz", "/metrics"} {
		m.Handle(path, api)
	}
	m.Handle("GET /static/", http.HandlerFunc(p.serveStatic))

	m.HandleFunc("GET /{$}", p.home)
	m.HandleFunc("GET /login", p.loginPage)
	m.HandleFunc("POST /login", p.login)
	m.HandleFunc("POST /logout", p.logout)
	m.HandleFunc("GET /forgot-password", p.forgotPage)
	m.HandleFunc("POST /forgot-password", p.forgot)
	m.HandleFunc("GET /invite", p.invitePage)
	m.HandleFunc("POST /invite", p.accept)
	m.HandleFunc("GET /reset-password", p.resetPage)
	m.HandleFunc("POST /reset-password", p.reset)

	m.HandleFunc("GET /account/password", p.passwordPage)
	m.HandleFunc("POST /account/password", p.changePassword)
	m.HandleFunc("GET /patients/{pid}", p.patient)
	m.HandleFunc("GET /patients/{pid}/documents/{did}/file", p.apiFile("did", "documents", "file"))
	m.HandleFunc("GET /patients/{pid}/activities/{hid}/print", p.apiFile("hid", "home-activities", "print"))
	m.HandleFunc("GET /patients/{pid}/forms/{aid}/download", p.apiFile("aid", "intake-forms", "download"))
	m.HandleFunc("POST /patients/{pid}/forms/{aid}/return", p.formReturn)
	m.HandleFunc("GET /patients/{pid}/billing", p.billing)
	m.HandleFunc("GET /patients/{pid}/payments/{payid}/receipt", p.apiFile("payid", "payments", "receipt"))
	m.HandleFunc("GET /patients/{pid}/pay", p.payPage)
	m.HandleFunc("POST /patients/{pid}/pay", p.pay)
	m.HandleFunc("GET /patients/{pid}/access-log", p.accessLog)
	m.HandleFunc("/", p.notFound)
	p.mux = m
}

// ServeHTTP gives every page a correlation id and the security headers,
// then routes it. The API's own paths keep the API's headers.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isAPIPath(r.URL.Path) {
		p.cfg.API.ServeHTTP(w, r)
		return
	}
	id := r.Header.Get("X-Correlation-ID")
	if _, err := uuid.Parse(id); err != nil {
		id = uuid.NewString()
	}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, &reqState{correlation: id}))
	h := w.Header()
	h.Set("X-Correlation-ID", id)
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self \"https://js.stripe.com\")")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	p.mux.ServeHTTP(w, r)
}

// ContentSecurityPolicy is sent with every page. Stripe.js (the card form)
// is the only script not served by the portal itself.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' https://js.stripe.com; " +
	"frame-src https://js.stripe.com https://hooks.stripe.com; connect-src 'self' https://api.stripe.com; " +
	"style-src 'self'; img-src 'self' data:; font-src 'self'; object-src 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

func isAPIPath(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
}

type stateKey struct{}

// reqState is what one browser request carries between the portal's steps.
type reqState struct {
	correlation string
	csrfSet     string // the anti-forgery secret set by this response
}

func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

func correlationID(r *http.Request) string { return stateOf(r).correlation }

func (p *Portal) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	p.static.ServeHTTP(w, r)
}

// render writes a page (a template of templates/) with status.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t, ok := p.pages[name]
	if !ok {
		p.log.Error("webportal: no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v.Site = p.cfg.ClinicName
	v.Page = name
	if v.CSRF == "" {
		v.CSRF = p.csrfFor(w, r)
	}
	v.Correlation = correlationID(r)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.Error("webportal: rendering failed", "page", name, "correlation_id", v.Correlation, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages carry PHI or links' tokens: never stored by a browser or a proxy.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// view is what every page template gets: the layout's fields, and the
// page's own data in Data.
type view struct {
	Site        string
	Page        string
	Title       string
	CSRF        string
	Account     string // the signed-in user's name; "" when signed out
	Notice      string // a success message
	Problem     *message
	Correlation string
	// Patients and Current drive the patient switcher.
	Patients []linkedPatient
	Current  *linkedPatient
	Data     any
}

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusNotFound, "error", &view{Title: "Page not found", Problem: &message{
		Title: "We could not find that page",
		Text:  "The address may be mistyped, or the page has moved. Go to the start page.",
	}})
}

// fail shows an error page for a problem the API answered (or one of ours).
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, status int, m message) {
	if status < 400 {
		status = http.StatusBadGateway
	}
	p.render(w, r, status, "error", &view{Title: m.Title, Problem: &m})
}
