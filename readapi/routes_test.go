package readapi

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/projections"
)

// TestEveryRouteIsClassifiedForPHIAudit walks the routes of the Gin engine:
// each must be registered as a PHI route (s.phi, audited) or listed in
// notPHI with a reason, so a new endpoint cannot forget the audit.
func TestEveryRouteIsClassifiedForPHIAudit(t *testing.T) {
	// With an engine, so that every optional route is registered.
	h := New(Deps{Engine: &projections.Engine{}})
	engine, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("New returned %T, want *gin.Engine", h)
	}
	seen := map[string]bool{}
	for _, r := range engine.Routes() {
		key := r.Method + " " + r.Path
		seen[key] = true
		_, isPHI := phiRoutes[key]
		reason, isNot := notPHI[key]
		switch {
		case isPHI && isNot:
			t.Errorf("%s is both a PHI route and listed as serving none (%q)", key, reason)
		case !isPHI && !isNot:
			t.Errorf("%s is not classified: register it with s.phi if it serves PHI, or list it in notPHI with the reason", key)
		}
	}
	for key := range phiRoutes {
		if !seen[key] {
			t.Errorf("phiRoutes names %s, which is no route", key)
		}
	}
	for key := range notPHI {
		if !seen[key] {
			t.Errorf("notPHI names %s, which is no route", key)
		}
	}
	if len(phiRoutes) == 0 {
		t.Fatal("no PHI routes registered")
	}
}
