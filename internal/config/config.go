// Package config reads Portico's configuration from the environment
// (API.md, "Configuration"): defaults first, then validation, so a process
// with a bad setting refuses to start and says which one.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone names resolve on hosts without /usr/share/zoneinfo

	"github.com/portico-health/portico/internal/linktoken"
)

// Config is every setting of portald and portalctl.
type Config struct {
	HTTPAddr         string // PORTAL_HTTP_ADDR
	DatabaseURL      string // PORTAL_DATABASE_URL
	EventStore       string // PORTAL_EVENTSTORE: postgres or esdb
	ESDBURL          string // PORTAL_ESDB_URL
	PublicURL        string // PORTAL_PUBLIC_URL
	SMTPURL          string // PORTAL_SMTP_URL
	EmailFrom        string // PORTAL_EMAIL_FROM
	StripeSecretKey  string // PORTAL_STRIPE_SECRET_KEY
	StripeWebhookKey string // PORTAL_STRIPE_WEBHOOK_SECRET
	StripeAPIBase    string // PORTAL_STRIPE_API_BASE
	// StripePublishableKey (PORTAL_STRIPE_PUBLISHABLE_KEY) lets the web
	// portal's pay page load Stripe.js; without it that page explains that
	// card payments are taken through the API.
	StripePublishableKey string
	LogLevel             string   // PORTAL_LOG_LEVEL: debug, info, warn, error
	InstanceName         string   // PORTAL_INSTANCE: names this process in audit records and leases
	TrustedProxies       []string // PORTAL_TRUSTED_PROXIES: comma list of proxy addresses/CIDRs whose X-Forwarded-For is believed
	TokenKey             string   // PORTAL_TOKEN_KEY: hex or base64, 32+ bytes; unset: a key kept in the database
	ProjectionsEnabled   bool     // set by portald --role
	BlobDir              string   // PORTAL_BLOB_DIR: keep uploaded files in this directory; unset: in the database
	MaxUploadBytes       int64    // PORTAL_MAX_UPLOAD_BYTES: the largest uploaded file, default 10 MiB
	// TimeZone (PORTAL_TIME_ZONE) is the clinic's IANA time zone, e.g.
	// America/Chicago: the web portal's times and the dates printed on
	// receipts, home activities and handouts. Unset: the server's local
	// zone, which on a cloud host is often UTC, a day off for an evening
	// payment.
	TimeZone string
}

// Location is TimeZone loaded (Validate has checked it), or time.Local.
func (c Config) Location() *time.Location {
	if c.TimeZone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.Local
	}
	return loc
}

// Defaults are the values of API.md's configuration table.
func Defaults() Config {
	host, _ := os.Hostname()
	return Config{
		HTTPAddr:           "127.0.0.1:8080",
		DatabaseURL:        "postgres://postgres@127.0.0.1:5432/portico?sslmode=disable",
		EventStore:         "postgres",
		PublicURL:          "http://127.0.0.1:8080",
		EmailFrom:          "portal@localhost",
		LogLevel:           "info",
		InstanceName:       fmt.Sprintf("%s-%d", host, os.Getpid()),
		ProjectionsEnabled: true,
		MaxUploadBytes:     10 << 20,
	}
}

// FromEnv reads the environment over the defaults and validates the result.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Defaults()
	set := func(dst *string, name string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	set(&c.HTTPAddr, "PORTAL_HTTP_ADDR")
	set(&c.DatabaseURL, "PORTAL_DATABASE_URL")
	set(&c.EventStore, "PORTAL_EVENTSTORE")
	set(&c.ESDBURL, "PORTAL_ESDB_URL")
	set(&c.PublicURL, "PORTAL_PUBLIC_URL")
	set(&c.SMTPURL, "PORTAL_SMTP_URL")
	set(&c.EmailFrom, "PORTAL_EMAIL_FROM")
	set(&c.StripeSecretKey, "PORTAL_STRIPE_SECRET_KEY")
	set(&c.StripeWebhookKey, "PORTAL_STRIPE_WEBHOOK_SECRET")
	set(&c.StripeAPIBase, "PORTAL_STRIPE_API_BASE")
	set(&c.StripePublishableKey, "PORTAL_STRIPE_PUBLISHABLE_KEY")
	set(&c.LogLevel, "PORTAL_LOG_LEVEL")
	set(&c.InstanceName, "PORTAL_INSTANCE")
	set(&c.TokenKey, "PORTAL_TOKEN_KEY")
	set(&c.BlobDir, "PORTAL_BLOB_DIR")
	set(&c.TimeZone, "PORTAL_TIME_ZONE")
	if v := strings.TrimSpace(getenv("PORTAL_MAX_UPLOAD_BYTES")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			n = -1
		}
		c.MaxUploadBytes = n
	}
	for _, p := range strings.Split(getenv("PORTAL_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	return c, c.Validate()
}

// Validate names every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("PORTAL_HTTP_ADDR %q: want host:port", c.HTTPAddr))
	}
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("PORTAL_DATABASE_URL: want a postgres:// URL"))
	}
	switch c.EventStore {
	case "postgres":
	case "esdb":
		if !strings.HasPrefix(c.ESDBURL, "esdb://") && !strings.HasPrefix(c.ESDBURL, "esdb+discover://") {
			errs = append(errs, errors.New("PORTAL_EVENTSTORE=esdb needs PORTAL_ESDB_URL, e.g. esdb://127.0.0.1:2113?tls=false"))
		}
	default:
		errs = append(errs, fmt.Errorf("PORTAL_EVENTSTORE %q: want postgres or esdb", c.EventStore))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("PORTAL_PUBLIC_URL %q: want an http(s) URL", c.PublicURL))
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			errs = append(errs, errors.New("PORTAL_SMTP_URL: want smtp://host:port or smtps://host:port"))
		}
	}
	if c.StripeAPIBase != "" {
		if u, err := url.Parse(c.StripeAPIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("PORTAL_STRIPE_API_BASE: want an http(s) URL, e.g. http://127.0.0.1:12111 for stripe-mock"))
		}
	}
	if c.StripePublishableKey != "" && !strings.HasPrefix(c.StripePublishableKey, "pk_") {
		// A secret key here would be sent to every browser.
		errs = append(errs, errors.New("PORTAL_STRIPE_PUBLISHABLE_KEY: want a publishable key (pk_…), never the secret one"))
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "Local" {
			errs = append(errs, fmt.Errorf("PORTAL_TIME_ZONE %q: want an IANA time zone name such as America/Chicago or Europe/Berlin", c.TimeZone))
		}
	}
	if c.MaxUploadBytes != 0 && (c.MaxUploadBytes < 1<<10 || c.MaxUploadBytes > 1<<30) {
		errs = append(errs, errors.New("PORTAL_MAX_UPLOAD_BYTES: want a whole number of bytes from 1024 to 1073741824"))
	}
	if c.TokenKey != "" {
		if _, err := linktoken.ParseKey(c.TokenKey); err != nil {
			errs = append(errs, errors.New("PORTAL_TOKEN_KEY: want 32 or more random bytes written as hex or base64"))
		}
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			errs = append(errs, fmt.Errorf("PORTAL_TRUSTED_PROXIES: %q is neither an IP address nor a CIDR", p))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("PORTAL_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}
