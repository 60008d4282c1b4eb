package readapi

// Home Activities: staff assign and unassign them; a portal user with the
// grant permission "activities" lists a patient's and prints each as a PDF.

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/internal/pdfdoc"
	"github.com/portico-health/portico/projections/activities"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff"))
		staff.POST("/patients/:pid/home-activities", s.assignHomeActivity)
		staff.POST("/home-activities/:hid/unassign", s.unassignHomeActivity)
		portal := api.Group("", s.requireSession("portal"))
		s.phi(portal, "GET", "/portal/patients/:pid/home-activities", audit.SubtypeQuery, s.portalHomeActivities)
		s.phi(portal, "GET", "/portal/patients/:pid/home-activities/:hid/print", audit.SubtypePrint, s.printHomeActivity)
	})
	notPHI["POST /api/v1/patients/:pid/home-activities"] = "a write; answers the new id only"
	notPHI["POST /api/v1/home-activities/:hid/unassign"] = "a write; answers 204"
}

// homeActivityEntity is how an access record names a Home Activity: in FHIR
// terms, a plan of care for the patient.
const homeActivityEntity = "CarePlan"

// POST /patients/{pid}/home-activities {title,instructions,frequency?}
func (s *server) assignHomeActivity(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		Title        string `json:"title"`
		Instructions string `json:"instructions"`
		Frequency    string `json:"frequency"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.AssignHomeActivity(c.Request.Context(), meta, commands.AssignHomeActivity{
		PatientID: pid, Title: body.Title, Instructions: body.Instructions, Frequency: body.Frequency,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// POST /home-activities/{hid}/unassign
func (s *server) unassignHomeActivity(c *gin.Context) {
	hid, ok := pathID(c, "hid")
	if !ok {
		return
	}
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	if err := s.Commands.UnassignHomeActivity(c.Request.Context(), meta, commands.UnassignHomeActivity{ActivityID: hid}); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// GET /portal/patients/{pid}/home-activities: assigned ones, newest first.
func (s *server) portalHomeActivities(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, portaluser.PermActivities)
	if err != nil {
		fail(c, err)
		return
	}
	list, err := activities.OfPatient(c.Request.Context(), s.Pool, pid, 500)
	if err != nil {
		fail(c, err)
		return
	}
	if list == nil {
		list = []activities.Activity{}
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g), Entities: []audit.Entity{{Type: "Patient", ID: pid}}}
	for _, a := range list {
		acc.Entities = append(acc.Entities, audit.Entity{Type: homeActivityEntity, ID: a.ID, Version: a.Version})
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "home_activities": list}, acc)
}

// GET /portal/patients/{pid}/home-activities/{hid}/print: the activity as a
// printable PDF. An unassigned activity, or another patient's, is not found.
func (s *server) printHomeActivity(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	hid, ok := pathID(c, "hid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, portaluser.PermActivities)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := activities.One(ctx, s.Pool, pid, hid)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := s.Commands.Patient(ctx, pid)
	if err != nil {
		fail(c, err)
		return
	}
	clinicName, err := s.Commands.ClinicName(ctx, a.ClinicID)
	if err != nil {
		fail(c, err)
		return
	}
	sheet := pdfdoc.ActivitySheet{
		ClinicName: clinicName, PatientFirstName: p.FirstName,
		Title: a.Title, Instructions: a.Instructions, AssignedAt: s.local(a.AssignedAt), PrintedAt: s.local(s.now()),
	}
	if a.Frequency != nil {
		sheet.Frequency = *a.Frequency
	}
	pdf, err := pdfdoc.Activity(sheet)
	if err != nil {
		fail(c, err)
		return
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g), Entities: []audit.Entity{
		{Type: "Patient", ID: pid}, {Type: homeActivityEntity, ID: a.ID, Version: a.Version},
	}}
	// The file name names no one: it is the activity's id.
	c.Header("Content-Disposition", `inline; filename="home-activity-`+a.ID.String()+`.pdf"`)
	c.Header("X-Content-Type-Options", "nosniff")
	s.deliverPHIBytes(c, http.StatusOK, "application/pdf", pdf, acc)
}
