package readapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/commands"
)

// metaOf is the command metadata of a request: the signed-in actor, the
// correlation id, and a command id derived from the Idempotency-Key header
// (scoped to the actor, so two callers' keys never collide). A retried
// request with the same key derives the same ids and has no second effect.
func metaOf(c *gin.Context) (commands.Meta, bool) {
	actor := actorOf(c)
	m := commands.Meta{Actor: actor, CorrelationID: correlationID(c)}
	if key := strings.TrimSpace(c.GetHeader("Idempotency-Key")); key != "" {
		if len(key) > 200 {
			abortProblem(c, http.StatusBadRequest, "validation_failed", "Idempotency-Key is at most 200 characters")
			return m, false
		}
		sum := sha256.Sum256([]byte(actor.Kind + "/" + actor.ID + "/" + c.FullPath() + "/" + key))
		m.CommandID = "idem:" + hex.EncodeToString(sum[:16])
	}
	return m, true
}

// bindJSON decodes the body into v, answering a clear problem when it is not
// the JSON the endpoint takes.
func bindJSON(c *gin.Context, v any) bool {
	if err := c.ShouldBindJSON(v); err != nil {
		abortProblem(c, http.StatusBadRequest, "validation_failed", "the body must be a JSON object with the documented fields")
		return false
	}
	return true
}
