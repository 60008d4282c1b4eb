package readapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		if s.Engine == nil {
			return
		}
		api.GET("/projections", s.requireStaffRole("admin"), s.projectionStatus)
	})
}

// GET /projections: each projection's position, lag, state and dead letters.
func (s *server) projectionStatus(c *gin.Context) {
	st, err := s.Engine.Status(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"projections": st})
}
