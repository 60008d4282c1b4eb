package readapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/internal/sessions"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		api.GET("/me", s.requireSession(), s.me)
	})
}

// me answers GET /me with the caller's account. A staff account is read
// from its stream (there is no staff read model yet). Portal accounts, and
// the patients they are linked to, come with the portal-users issue.
func (s *server) me(c *gin.Context) {
	sess := sessionOf(c)
	switch sess.AccountKind {
	case sessions.KindStaff:
		acct, err := s.Commands.StaffAccount(c.Request.Context(), sess.AccountID)
		if err != nil {
			fail(c, err)
			return
		}
		out := accountOf(acct)
		out.ClinicID = &acct.ClinicID
		c.JSON(http.StatusOK, out)
	default:
		fail(c, domain.NotFound("account"))
	}
}
