// Package readapi is Portico's HTTP API on Gin. Query handlers read the
// Postgres read models the projections keep; command handlers are thin
// adapters that parse a request and call the write side (commands/). Every
// error becomes an RFC 9457 problem in one place (problem.go).
package readapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/blobstore"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/projections"
)

// Check is one dependency /readyz looks at.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Deps is what the API needs from the process.
type Deps struct {
	Logger *slog.Logger
	// Ready are the checks of /readyz: database, event store, projections.
	Ready []Check
	// Pool reads the read models and sessions; Store and Commands serve the
	// write side. All three may be nil in tests of the bare server.
	Pool     *pgxpool.Pool
	Store    eventstore.Store
	Commands *commands.Handlers
	// Engine reports projection status; nil hides GET /api/v1/projections.
	Engine *projections.Engine
	// Audit records PHI accesses (internal/phiaudit). Without it every PHI
	// route answers 503: nothing is shown unrecorded.
	Audit phiaudit.Auditor
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For is believed (PORTAL_TRUSTED_PROXIES); none by default.
	TrustedProxies []string
	// Clock decides session expiry and statuses shown; nil is the system
	// clock. Tests share one with the command handlers.
	Clock func() time.Time
	// PublicURL is the portal's address (PORTAL_PUBLIC_URL), printed on the
	// portal handout.
	PublicURL string
	// Blobs keeps uploaded files (internal/blobstore); nil keeps them in
	// the database of Pool.
	Blobs blobstore.Store
	// Uploads is what an uploaded file may be (size limit, media types by
	// content); the zero value is blobstore's defaults (10 MiB; PDF, PNG,
	// JPEG, DOCX).
	Uploads blobstore.Policy
	// Location is the clinic's time zone (PORTAL_TIME_ZONE), in which the
	// printed documents (receipts, home activities, the handout) give their
	// dates; nil is the server's local zone. JSON answers stay in UTC.
	Location *time.Location
}

// local is t in the clinic's time zone, for what is printed for people.
func (s *server) local(t time.Time) time.Time {
	if s.Location == nil {
		return t.Local()
	}
	return t.In(s.Location)
}

func (s *server) now() time.Time {
	if s.Clock != nil {
		return s.Clock().UTC()
	}
	return time.Now().UTC()
}

// server carries the dependencies every route file's handlers share.
type server struct {
	Deps
	// background counts work a handler left running after its answer
	// ("Forgot password"); Wait lets a process finish it before exiting.
	background sync.WaitGroup
}

// routeGroups are added by the feature files of this package (auth.go,
// patients.go, …), each registering its own routes under /api/v1.
var routeGroups []func(s *server, api *gin.RouterGroup)

// New builds the HTTP handler.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// The client address (sign-in throttling, audit records) comes from the
	// connection unless a trusted proxy forwarded it: anyone can send
	// X-Forwarded-For.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		panic("readapi: trusted proxies: " + err.Error())
	}
	r.ContextWithFallback = true
	r.Use(withCorrelation, accessLog(d.Logger), recoverer(d.Logger))
	r.NoRoute(func(c *gin.Context) { abortProblem(c, http.StatusNotFound, "not_found", "no such resource") })
	r.NoMethod(func(c *gin.Context) {
		abortProblem(c, http.StatusMethodNotAllowed, "method_not_allowed", "this resource does not answer "+c.Request.Method)
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", readyz(d.Ready))
	r.GET("/metrics", gin.WrapH(promhttp.Handler()))

	s := &server{Deps: d}
	api := r.Group("/api/v1", s.auditGuard)
	for _, add := range routeGroups {
		add(s, api)
	}
	return r
}

const correlationKey = "correlation_id"

// withCorrelation gives every request a correlation id (the caller's
// X-Correlation-ID if it is sane) that follows it into logs and events.
func withCorrelation(c *gin.Context) {
	id := c.GetHeader("X-Correlation-ID")
	if _, err := uuid.Parse(id); err != nil {
		id = uuid.NewString()
	}
	c.Set(correlationKey, id)
	c.Header("X-Correlation-ID", id)
	c.Next()
}

func correlationID(c *gin.Context) string { return c.GetString(correlationKey) }

// accessLog logs the route template, never the raw path or query string:
// those can carry names and search terms, which are PHI.
func accessLog(l *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		l.LogAttrs(c.Request.Context(), slog.LevelInfo, "http",
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("took", time.Since(start)),
			slog.String("correlation_id", correlationID(c)))
	}
}

func recoverer(l *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				l.Error("panic serving request", "route", c.FullPath(), "correlation_id", correlationID(c), "panic", v)
				abortProblem(c, http.StatusInternalServerError, "internal", "something went wrong on our side; quote the correlation id "+correlationID(c))
			}
		}()
		c.Next()
	}
}

// readyz answers 200 only when every dependency answers within a second.
func readyz(checks []Check) gin.HandlerFunc {
	return func(c *gin.Context) {
		results := make(map[string]string, len(checks))
		ok := true
		for _, chk := range checks {
			ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
			err := chk.Run(ctx)
			cancel()
			if err != nil {
				ok = false
				results[chk.Name] = "failing"
				slog.Warn("readiness check failed", "check", chk.Name, "err", err)
				continue
			}
			results[chk.Name] = "ok"
		}
		status, word := http.StatusOK, "ready"
		if !ok {
			status, word = http.StatusServiceUnavailable, "not_ready"
		}
		c.JSON(status, gin.H{"status": word, "checks": results})
	}
}
