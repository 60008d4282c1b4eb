package readapi

// Every response that carries protected health information leaves through
// deliverPHI, which appends the access record (internal/phiaudit) and only
// then writes the body; if the record cannot be stored the answer is 503 and
// nothing of the data. Routes that serve PHI are registered with s.phi, so
// the audit guard also records every refused attempt on them (no session,
// no grant, another clinic's patient), without the data. routes_test.go
// fails for any route that is in neither phiRoutes nor notPHI.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/internal/phiaudit"
	"github.com/portico-health/portico/internal/sessions"
)

// phiRoutes are "METHOD /path" of every route that serves PHI, with the
// kind of access (audit subtype). s.phi fills it.
var phiRoutes = map[string]string{}

// notPHI are the routes that serve no PHI, and why. A route in neither map
// fails routes_test.go.
var notPHI = map[string]string{
	"GET /healthz":                                   "liveness only",
	"GET /readyz":                                    "dependency health only",
	"GET /metrics":                                   "Prometheus counters; no identifiers",
	"POST /api/v1/auth/login":                        "credentials in, a session token and the caller's own account out",
	"POST /api/v1/auth/logout":                       "ends a session",
	"POST /api/v1/auth/forgot-password":              "always the same answer",
	"POST /api/v1/auth/reset-password":               "answers 204",
	"POST /api/v1/invitations/accept":                "a session and the caller's own account",
	"POST /api/v1/patients":                          "a write; answers the new id only",
	"POST /api/v1/patients/:pid/contacts":            "a write; answers the new id only",
	"POST /api/v1/patients/:pid/portal-invitations":  "a write; answers ids only",
	"POST /api/v1/patients/:pid/portal-users":        "a write; answers ids only",
	"DELETE /api/v1/patients/:pid/portal-users/:uid": "a write; answers 204",
	"GET /api/v1/projections":                        "projection positions and lag; no patient data",
}

// phi registers a route that serves PHI.
func (s *server) phi(g gin.IRoutes, method, path, subtype string, handlers ...gin.HandlerFunc) {
	full := joinPath(g, path)
	phiRoutes[method+" "+full] = subtype
	g.Handle(method, path, handlers...)
}

func joinPath(g gin.IRoutes, path string) string {
	if rg, ok := g.(*gin.RouterGroup); ok {
		base := rg.BasePath()
		if base == "/" {
			return path
		}
		return base + path
	}
	return path
}

const phiRecordedKey = "portico.phi_recorded"

// phiAccess is what a handler says about the PHI it delivers.
type phiAccess struct {
	Patients []uuid.UUID
	Entities []audit.Entity
	// OnBehalfOf is the patient a portal proxy acts for.
	OnBehalfOf uuid.UUID
}

// deliverPHI writes body as JSON after its access record is durable.
func (s *server) deliverPHI(c *gin.Context, status int, body any, acc phiAccess) {
	data, err := json.Marshal(body)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverPHIBytes(c, status, "application/json; charset=utf-8", data, acc)
}

// deliverPHIBytes writes data (a JSON body, a file, a PDF, an export) after
// its access record is durable.
func (s *server) deliverPHIBytes(c *gin.Context, status int, contentType string, data []byte, acc phiAccess) {
	sum := sha256.Sum256(data)
	rec := s.accessRecord(c, acc, status, hex.EncodeToString(sum[:]))
	rec.Outcome = audit.OutcomeSuccess
	c.Set(phiRecordedKey, true)
	if _, err := s.auditor().Record(c.Request.Context(), rec); err != nil {
		abortProblem(c, http.StatusServiceUnavailable, "audit_unavailable",
			"the access could not be recorded, so nothing is shown; try again shortly")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, contentType, data)
}

// accessRecord is the record of this request's access, as far as the
// request tells: the caller (if signed in), the address, the route.
func (s *server) accessRecord(c *gin.Context, acc phiAccess, status int, bodyHash string) audit.Access {
	subtype := phiRoutes[c.Request.Method+" "+c.FullPath()]
	if subtype == "" {
		subtype = audit.SubtypeRead
	}
	a := audit.Access{
		Recorded:      s.now(),
		Subtype:       subtype,
		Agent:         audit.Agent{Kind: "anonymous", Network: c.ClientIP(), UserAgent: truncate(c.Request.UserAgent(), 300), OnBehalfOf: acc.OnBehalfOf},
		Patients:      acc.Patients,
		Entities:      acc.Entities,
		Purpose:       audit.PurposeOperations,
		CorrelationID: correlationID(c),
		Route:         c.Request.Method + " " + c.FullPath(),
		Status:        status,
		BodySHA256:    bodyHash,
	}
	if v, ok := c.Get(sessionKey); ok {
		if sess, ok := v.(sessions.Session); ok {
			a.Agent.ID, a.Agent.Kind, a.Agent.Role, a.Agent.ClinicID = sess.AccountID.String(), sess.AccountKind, sess.Role, sess.ClinicID
			a.Purpose = purposeOf(sess)
		}
	}
	if a.Patients == nil {
		a.Patients = []uuid.UUID{}
	}
	if a.Entities == nil {
		a.Entities = []audit.Entity{}
	}
	return a
}

func purposeOf(sess sessions.Session) string {
	switch {
	case sess.AccountKind == sessions.KindPortal:
		return audit.PurposePatientReq
	case sess.Role == "auditor":
		return audit.PurposeCompliance
	case sess.Role == "billing":
		return audit.PurposePayment
	case sess.Role == "admin" || sess.Role == "staff":
		return audit.PurposeTreatment
	}
	return audit.PurposeOperations
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// hashingWriter keeps the SHA-256 of what a refused PHI request was sent.
type hashingWriter struct {
	gin.ResponseWriter
	h hash.Hash
}

func (w *hashingWriter) Write(b []byte) (int, error) {
	w.h.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *hashingWriter) WriteString(s string) (int, error) {
	w.h.Write([]byte(s))
	return w.ResponseWriter.WriteString(s)
}

// auditGuard runs first on every API route. On a PHI route whose handler
// did not deliver (a refusal: no session, no grant, not found, a bad
// request, a failure), it records the attempt with what was sent instead.
func (s *server) auditGuard(c *gin.Context) {
	subtype, isPHI := phiRoutes[c.Request.Method+" "+c.FullPath()]
	if !isPHI {
		c.Next()
		return
	}
	hw := &hashingWriter{ResponseWriter: c.Writer, h: sha256.New()}
	c.Writer = hw
	c.Next()
	if _, delivered := c.Get(phiRecordedKey); delivered {
		return
	}
	status := c.Writer.Status()
	var acc phiAccess
	if pid, err := uuid.Parse(c.Param("pid")); err == nil {
		acc.Patients = []uuid.UUID{pid}
	}
	rec := s.accessRecord(c, acc, status, hex.EncodeToString(hw.h.Sum(nil)))
	rec.Subtype = subtype
	switch {
	case status >= 500:
		rec.Outcome, rec.OutcomeDesc = audit.OutcomeFailed, "the request failed"
	case status >= 400:
		rec.Outcome, rec.OutcomeDesc = audit.OutcomeDenied, http.StatusText(status)
	default:
		// A PHI route answered without deliverPHI: a bug. Record it, loudly.
		rec.Outcome, rec.OutcomeDesc = audit.OutcomeSuccess, "delivered without a prior access record"
		s.Logger.Error("PHI route answered without an access record", "route", rec.Route, "correlation_id", rec.CorrelationID)
	}
	if _, err := s.auditor().Record(c.Request.Context(), rec); err != nil && !errors.Is(err, phiaudit.ErrUnavailable) {
		s.Logger.Error("recording a refused PHI access failed", "route", rec.Route, "correlation_id", rec.CorrelationID, "err", err)
	}
}

// auditor is the API's recorder.
func (s *server) auditor() phiaudit.Auditor {
	if s.Audit != nil {
		return s.Audit
	}
	return unavailableAuditor{}
}

type unavailableAuditor struct{}

func (unavailableAuditor) Record(context.Context, audit.Access) (audit.Access, error) {
	return audit.Access{}, phiaudit.ErrUnavailable
}
