package readapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/stripepay"
)

// Problem is an RFC 9457 problem document with Portico's stable code.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Code     string            `json:"code"`
	Instance string            `json:"instance,omitempty"`
	Errors   map[string]string `json:"errors,omitempty"`
}

const problemBase = "https://portico.dev/problems/"

var statusOf = map[domain.Kind]int{
	domain.KindValidation:   http.StatusBadRequest,
	domain.KindNotFound:     http.StatusNotFound,
	domain.KindConflict:     http.StatusConflict,
	domain.KindForbidden:    http.StatusForbidden,
	domain.KindUnauthorized: http.StatusUnauthorized,
	domain.KindPrecondition: http.StatusPreconditionFailed,
	// payment_processing_disabled: the clinic is not enrolled.
	domain.KindDisabled: http.StatusForbidden,
}

// problemFor is the one place errors become HTTP answers. Anything that is
// not a domain refusal is our fault: a 500 (or 503 when a dependency is
// down) whose detail reveals nothing, with the cause logged under the
// correlation id.
func problemFor(c *gin.Context, err error) Problem {
	if de, ok := domain.AsError(err); ok {
		status := statusOf[de.Kind]
		if status == 0 {
			status = http.StatusBadRequest
		}
		return Problem{Type: problemBase + de.Code, Title: http.StatusText(status), Status: status, Detail: de.Message, Code: de.Code, Errors: de.Fields}
	}
	if errors.Is(err, commands.ErrCardPaymentsUnavailable) || errors.Is(err, stripepay.ErrUnavailable) {
		slog.WarnContext(c.Request.Context(), "card payment not started", "route", c.FullPath(), "correlation_id", correlationID(c), "err", err)
		return Problem{Type: problemBase + "payments_unavailable", Title: "Service Unavailable", Status: http.StatusServiceUnavailable, Detail: "card payments cannot be started right now; nothing was charged; try again shortly", Code: "payments_unavailable"}
	}
	if errors.Is(err, eventstore.ErrClosed) {
		return Problem{Type: problemBase + "unavailable", Title: "Service Unavailable", Status: http.StatusServiceUnavailable, Detail: "the service is shutting down or cannot reach its storage; try again shortly", Code: "unavailable"}
	}
	slog.ErrorContext(c.Request.Context(), "request failed", "route", c.FullPath(), "correlation_id", correlationID(c), "err", err)
	return Problem{Type: problemBase + "internal", Title: "Internal Server Error", Status: http.StatusInternalServerError, Detail: "something went wrong on our side; quote the correlation id " + correlationID(c), Code: "internal"}
}

// fail answers a request with the problem for err and stops the chain.
func fail(c *gin.Context, err error) {
	p := problemFor(c, err)
	writeProblem(c, p)
}

func writeProblem(c *gin.Context, p Problem) {
	p.Instance = c.Request.URL.Path
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

// abortProblem answers with a problem built here, for HTTP-level refusals.
func abortProblem(c *gin.Context, status int, code, detail string) {
	writeProblem(c, Problem{Type: problemBase + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code})
}
