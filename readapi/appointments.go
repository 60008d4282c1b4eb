package readapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/projections/appointments"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff"))
		staff.POST("/patients/:pid/appointments", s.scheduleAppointment)
		staff.POST("/appointments/:aid/reschedule", s.rescheduleAppointment)
		staff.POST("/appointments/:aid/cancel", s.cancelAppointment)
		portal := api.Group("", s.requireSession("portal"))
		s.phi(portal, "GET", "/portal/patients/:pid/appointments", audit.SubtypeQuery, s.portalAppointments)
	})
	notPHI["POST /api/v1/patients/:pid/appointments"] = "a write; answers the new id only"
	notPHI["POST /api/v1/appointments/:aid/reschedule"] = "a write; answers 204"
	notPHI["POST /api/v1/appointments/:aid/cancel"] = "a write; answers 204"
}

// POST /patients/{pid}/appointments {starts_at,ends_at,provider,location,kind}
func (s *server) scheduleAppointment(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		StartsAt time.Time `json:"starts_at"`
		EndsAt   time.Time `json:"ends_at"`
		Provider string    `json:"provider"`
		Location string    `json:"location"`
		Kind     string    `json:"kind"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.ScheduleAppointment(c.Request.Context(), meta, commands.ScheduleAppointment{
		PatientID: pid, StartsAt: body.StartsAt, EndsAt: body.EndsAt, Provider: body.Provider, Location: body.Location, Kind: body.Kind,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// POST /appointments/{aid}/reschedule {starts_at,ends_at}
func (s *server) rescheduleAppointment(c *gin.Context) {
	aid, ok := pathID(c, "aid")
	if !ok {
		return
	}
	var body struct {
		StartsAt time.Time `json:"starts_at"`
		EndsAt   time.Time `json:"ends_at"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	if err := s.Commands.RescheduleAppointment(c.Request.Context(), meta, commands.RescheduleAppointment{AppointmentID: aid, StartsAt: body.StartsAt, EndsAt: body.EndsAt}); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// POST /appointments/{aid}/cancel {reason?}
func (s *server) cancelAppointment(c *gin.Context) {
	aid, ok := pathID(c, "aid")
	if !ok {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	if c.Request.ContentLength != 0 && !bindJSON(c, &body) {
		return
	}
	if err := s.Commands.CancelAppointment(c.Request.Context(), meta, commands.CancelAppointment{AppointmentID: aid, Reason: body.Reason}); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// GET /portal/patients/{pid}/appointments: upcoming, soonest first.
func (s *server) portalAppointments(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, "")
	if err != nil {
		fail(c, err)
		return
	}
	list, err := appointments.Upcoming(c.Request.Context(), s.Pool, pid, s.now(), 200)
	if err != nil {
		fail(c, err)
		return
	}
	if list == nil {
		list = []appointments.Appointment{}
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g), Entities: []audit.Entity{{Type: "Patient", ID: pid}}}
	for _, a := range list {
		acc.Entities = append(acc.Entities, audit.Entity{Type: "Appointment", ID: a.ID, Version: a.Version})
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "appointments": list}, acc)
}
