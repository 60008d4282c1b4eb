package readapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/projections/patients"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireSession("staff"))
		staff.POST("/patients", s.registerPatient)
		s.phi(staff, "GET", "/patients", audit.SubtypeQuery, s.searchPatients)
		staff.POST("/patients/:pid/contacts", s.addPatientContact)
	})
}

// POST /patients {first_name,last_name,date_of_birth,email?}
func (s *server) registerPatient(c *gin.Context) {
	var body struct {
		FirstName   string `json:"first_name"`
		LastName    string `json:"last_name"`
		DateOfBirth string `json:"date_of_birth"`
		Email       string `json:"email"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.RegisterPatient(c.Request.Context(), meta, commands.RegisterPatient{
		FirstName: body.FirstName, LastName: body.LastName, DateOfBirth: body.DateOfBirth, Email: body.Email,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// POST /patients/{pid}/contacts {name,relationship,email}
func (s *server) addPatientContact(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		Name         string `json:"name"`
		Relationship string `json:"relationship"`
		Email        string `json:"email"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.AddPatientContact(c.Request.Context(), meta, commands.AddPatientContact{
		PatientID: pid, Name: body.Name, Relationship: body.Relationship, Email: body.Email,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// GET /patients?query=&limit= : the staff member's clinic only.
func (s *server) searchPatients(c *gin.Context) {
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			fail(c, domain.Invalid(map[string]string{"limit": "a whole number from 1 to 200"}))
			return
		}
		limit = n
	}
	query := c.Query("query")
	if len(query) > 100 {
		fail(c, domain.Invalid(map[string]string{"query": "at most 100 characters"}))
		return
	}
	found, err := patients.Search(c.Request.Context(), s.Pool, "rm", actorOf(c).ClinicID, query, limit)
	if err != nil {
		fail(c, err)
		return
	}
	acc := phiAccess{Patients: []uuid.UUID{}, Entities: []audit.Entity{}}
	for _, p := range found {
		acc.Patients = append(acc.Patients, p.ID)
		acc.Entities = append(acc.Entities, audit.Entity{Type: "Patient", ID: p.ID, Version: p.Version})
	}
	if found == nil {
		found = []patients.Patient{}
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patients": found}, acc)
}

// pathID reads a UUID path parameter; anything else is a resource that
// does not exist.
func pathID(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		fail(c, domain.NotFound("resource"))
		return uuid.Nil, false
	}
	return id, true
}
