package webportal

import (
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"net/http"

	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/readapi"
)

// Handler is what portald serves: the API (readapi) for an opened Portico,
// with the web portal in front of it. portald and the end-to-end test both
// build it here, so they serve the same thing: a dependency the API gains
// is wired here, not in cmd/portald. configure, when given,
// changes the portal's Config (a Stripe publishable key, a time zone)
// before it is built.
func Handler(a *app.App, logger *slog.Logger, configure ...func(*Config)) (http.Handler, error) {
	cfg := a.Config
	api := readapi.New(readapi.Deps{
		Clock:          a.Clock,
		Audit:          a.Audit,
		Blobs:          a.Blobs,
		Uploads:        a.UploadPolicy(),
		TrustedProxies: cfg.TrustedProxies,
		PublicURL:      cfg.PublicURL,
		Logger:         logger,
		Pool:           a.Pool,
		Store:          a.Store,
		Commands:       a.Commands,
		Ready: []readapi.Check{
			{Name: "database", Run: a.Pool.Ping},
			{Name: "eventstore", Run: a.Store.Ping},
			{Name: "projections", Run: a.Engine.Ready},
		},
		Engine:   a.Engine,
		Location: cfg.Location(),
	})
	pc := Config{API: api, PublicURL: cfg.PublicURL, Logger: logger, UploadLimit: a.UploadPolicy().Limit(),
		StripePublishableKey: cfg.StripePublishableKey, Location: cfg.Location()}
	if cfg.TokenKey != "" {
		// Every process with the same PORTAL_TOKEN_KEY checks the others'
		// forms; without it each process draws its own key.
		m := hmac.New(sha256.New, []byte(cfg.TokenKey))
		m.Write([]byte("portico-webportal-csrf-key"))
		pc.CSRFKey = m.Sum(nil)
	}
	for _, f := range configure {
		f(&pc)
	}
	p, err := New(pc)
	if err != nil {
		return nil, err
	}
	return p, nil
}
