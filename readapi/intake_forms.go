package readapi

// Intake forms: the clinic's library of blank forms (staff upload), their
// assignment to patients, and their return through the portal.

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/domain/intakeform"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/internal/blobstore"
	"github.com/portico-health/portico/projections/intakeforms"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff"))
		staff.POST("/intake-forms", s.uploadIntakeForm)
		staff.POST("/patients/:pid/intake-forms", s.assignIntakeForm)
		s.phi(staff, "GET", "/patients/:pid/intake-forms", audit.SubtypeQuery, s.staffIntakeForms)
		s.phi(staff, "GET", "/patients/:pid/intake-forms/:aid/returned", audit.SubtypeDownload, s.staffReturnedForm)
		portal := api.Group("", s.requireSession("portal"))
		s.phi(portal, "GET", "/portal/patients/:pid/intake-forms", audit.SubtypeQuery, s.portalIntakeForms)
		s.phi(portal, "GET", "/portal/patients/:pid/intake-forms/:aid/download", audit.SubtypeDownload, s.portalBlankForm)
		portal.POST("/portal/patients/:pid/intake-forms/:aid/return", s.returnIntakeForm)
	})
	notPHI["POST /api/v1/intake-forms"] = "a write of a blank form; answers the new id only"
	notPHI["POST /api/v1/patients/:pid/intake-forms"] = "a write; answers the new id only"
	notPHI["POST /api/v1/portal/patients/:pid/intake-forms/:aid/return"] = "a write; answers what was stored, no record content"
}

func fileOf(b blobstore.Blob) intakeform.File {
	return intakeform.File{SHA256: b.SHA256, Size: b.Size, MediaType: b.MediaType, Name: b.Name}
}

// POST /intake-forms (multipart: name, file)
func (s *server) uploadIntakeForm(c *gin.Context) {
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	form, ok := s.readUpload(c, "file", "name")
	if !ok {
		return
	}
	blob, err := form.File.Store(c.Request.Context(), s.blobStore())
	if err != nil {
		s.uploadFailed(c, err)
		return
	}
	id, err := s.Commands.UploadIntakeForm(c.Request.Context(), meta, commands.UploadIntakeForm{Name: form.Fields["name"], File: fileOf(blob)})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// POST /patients/{pid}/intake-forms {form_id,message?}
func (s *server) assignIntakeForm(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		FormID  uuid.UUID `json:"form_id"`
		Message string    `json:"message"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	id, err := s.Commands.AssignIntakeForm(c.Request.Context(), meta, commands.AssignIntakeForm{PatientID: pid, FormID: body.FormID, Message: body.Message})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"assignment_id": id})
}

func (s *server) deliverAssignments(c *gin.Context, pid, onBehalfOf uuid.UUID) {
	list, err := intakeforms.OfPatient(c.Request.Context(), s.Pool, pid)
	if err != nil {
		fail(c, err)
		return
	}
	if list == nil {
		list = []intakeforms.Assignment{}
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: onBehalfOf, Entities: []audit.Entity{{Type: "Patient", ID: pid}}}
	for _, a := range list {
		acc.Entities = append(acc.Entities, audit.Entity{Type: "Task", ID: a.ID, Version: a.Version})
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "intake_forms": list}, acc)
}

// GET /patients/{pid}/intake-forms: assignments with what came back, and when.
func (s *server) staffIntakeForms(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	if _, err := s.staffPatient(c, pid); err != nil {
		fail(c, err)
		return
	}
	s.deliverAssignments(c, pid, uuid.Nil)
}

// GET /portal/patients/{pid}/intake-forms: assigned forms with the message.
func (s *server) portalIntakeForms(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, portaluser.PermForms)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverAssignments(c, pid, behalfOf(g))
}

// GET /portal/patients/{pid}/intake-forms/{aid}/download: the blank form.
func (s *server) portalBlankForm(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	aid, ok := pathID(c, "aid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, portaluser.PermForms)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := s.Commands.IntakeAssignment(ctx, pid, aid)
	if err != nil {
		fail(c, err)
		return
	}
	form, err := s.Commands.IntakeForm(ctx, a.ClinicID, a.FormID)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverStoredFile(c, form.File.SHA256, form.File.Size, form.File.MediaType, form.File.Name, phiAccess{
		Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g),
		Entities: []audit.Entity{{Type: "Patient", ID: pid}, {Type: "Task", ID: aid, Version: a.Version()}},
	})
}

// POST /portal/patients/{pid}/intake-forms/{aid}/return (multipart: file)
func (s *server) returnIntakeForm(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	aid, ok := pathID(c, "aid")
	if !ok {
		return
	}
	if _, err := s.portalGrant(c, pid, portaluser.PermForms); err != nil {
		fail(c, err)
		return
	}
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if _, err := s.Commands.IntakeAssignment(ctx, pid, aid); err != nil {
		fail(c, err)
		return
	}
	form, ok := s.readUpload(c, "file")
	if !ok {
		return
	}
	blob, err := form.File.Store(ctx, s.blobStore())
	if err != nil {
		s.uploadFailed(c, err)
		return
	}
	if err := s.Commands.ReturnIntakeForm(ctx, meta, commands.ReturnIntakeForm{PatientID: pid, AssignmentID: aid, File: fileOf(blob)}); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"assignment_id": aid, "file": gin.H{"sha256": blob.SHA256, "size": blob.Size, "media_type": blob.MediaType}})
}

// GET /patients/{pid}/intake-forms/{aid}/returned: the latest returned file.
func (s *server) staffReturnedForm(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	aid, ok := pathID(c, "aid")
	if !ok {
		return
	}
	if _, err := s.staffPatient(c, pid); err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := s.Commands.IntakeAssignment(ctx, pid, aid)
	if err != nil {
		fail(c, err)
		return
	}
	if a.LastReturn == nil {
		fail(c, domain.NotFound("returned form"))
		return
	}
	s.deliverStoredFile(c, a.LastReturn.SHA256, a.LastReturn.Size, a.LastReturn.MediaType, a.LastReturn.Name, phiAccess{
		Patients: []uuid.UUID{pid}, Entities: []audit.Entity{{Type: "Patient", ID: pid}, {Type: "Task", ID: aid, Version: a.Version()}},
	})
}
