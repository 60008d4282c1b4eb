package readapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/projections/documents"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff"))
		staff.POST("/patients/:pid/documents", s.completeDocument)
		staff.POST("/documents/:did/retract", s.retractDocument)
		s.phi(staff, "GET", "/patients/:pid/documents", audit.SubtypeQuery, s.staffDocuments)
		s.phi(staff, "GET", "/patients/:pid/documents/:did/file", audit.SubtypeDownload, s.staffDocumentFile)
		portal := api.Group("", s.requireSession("portal"))
		s.phi(portal, "GET", "/portal/patients/:pid/documents", audit.SubtypeQuery, s.portalDocuments)
		s.phi(portal, "GET", "/portal/patients/:pid/documents/:did/file", audit.SubtypeDownload, s.portalDocumentFile)
	})
	notPHI["POST /api/v1/patients/:pid/documents"] = "a write (multipart upload); answers the new id only"
	notPHI["POST /api/v1/documents/:did/retract"] = "a write; answers 204"
}

// maxListed bounds a list of documents.
const maxListed = 500

// POST /patients/{pid}/documents, multipart: type, title, file. The file
// is checked (size, media type by content) and the type and title
// validated before anything is stored; then the file is stored and the
// document completed.
func (s *server) completeDocument(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	// Another clinic's patient is not found before its upload is read.
	if !s.documentsPatient(c, pid) {
		return
	}
	form, ok := s.readUpload(c, "file", "type", "title")
	if !ok {
		return
	}
	typ, title, err := document.Normalise(form.Fields["type"], form.Fields["title"])
	if err != nil {
		fail(c, err)
		return
	}
	blob, err := form.File.Store(ctx, s.blobStore())
	if err != nil {
		fail(c, err)
		return
	}
	id, err := s.Commands.CompleteDocument(ctx, meta, commands.CompleteDocument{
		PatientID: pid, Type: typ, Title: title,
		File: document.File{SHA256: blob.SHA256, Size: blob.Size, MediaType: blob.MediaType, Name: blob.Name},
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// documentsPatient checks that pid is a patient of the staff caller's
// clinic; another clinic's patient is not found, like one that does not
// exist. On a refusal it has answered and says false.
func (s *server) documentsPatient(c *gin.Context, pid uuid.UUID) bool {
	clinicID, err := s.Commands.PatientClinic(c.Request.Context(), pid)
	if err == nil && clinicID != actorOf(c).ClinicID {
		err = domain.NotFound("patient")
	}
	if err != nil {
		fail(c, err)
		return false
	}
	return true
}

// POST /documents/{did}/retract {reason?}
func (s *server) retractDocument(c *gin.Context) {
	did, ok := pathID(c, "did")
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
	if err := s.Commands.RetractDocument(c.Request.Context(), meta, commands.RetractDocument{DocumentID: did, Reason: body.Reason}); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// GET /patients/{pid}/documents: staff of the patient's clinic see every
// published document, those of types hidden from the portal marked so.
func (s *server) staffDocuments(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	if !s.documentsPatient(c, pid) {
		return
	}
	list, err := documents.OfPatient(c.Request.Context(), s.Pool, pid, maxListed)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverDocuments(c, pid, uuid.Nil, list, len(list))
}

// GET /portal/patients/{pid}/documents: the completed documents of types
// the clinic shows, newest first, with their count.
func (s *server) portalDocuments(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, portaluser.PermDocuments)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	list, err := documents.Visible(ctx, s.Pool, pid, maxListed)
	if err != nil {
		fail(c, err)
		return
	}
	n, err := documents.CountVisible(ctx, s.Pool, pid)
	if err != nil {
		fail(c, err)
		return
	}
	s.deliverDocuments(c, pid, behalfOf(g), list, n)
}

func (s *server) deliverDocuments(c *gin.Context, pid, onBehalfOf uuid.UUID, list []documents.Document, count int) {
	if list == nil {
		list = []documents.Document{}
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: onBehalfOf, Entities: []audit.Entity{{Type: "Patient", ID: pid}}}
	for _, d := range list {
		acc.Entities = append(acc.Entities, audit.Entity{Type: "DocumentReference", ID: d.ID, Version: d.Version})
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"patient_id": pid, "count": count, "documents": list}, acc)
}

// GET /patients/{pid}/documents/{did}/file: staff of the patient's clinic
// open a published document's file, hidden types included, to see what the
// patient sees. A retracted one is not found.
func (s *server) staffDocumentFile(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	did, ok := pathID(c, "did")
	if !ok {
		return
	}
	if !s.documentsPatient(c, pid) {
		return
	}
	d, found, err := documents.PublishedOne(c.Request.Context(), s.Pool, pid, did)
	s.deliverDocumentFile(c, pid, uuid.Nil, d, found, err)
}

// deliverDocumentFile answers the file of a document looked up for pid (or
// the lookup's failure, or not_found), recorded as a download of it.
func (s *server) deliverDocumentFile(c *gin.Context, pid, onBehalfOf uuid.UUID, d documents.Document, found bool, err error) {
	if err != nil {
		fail(c, err)
		return
	}
	if !found {
		fail(c, domain.NotFound("document"))
		return
	}
	s.deliverStoredFile(c, d.SHA256, d.File.Size, d.File.MediaType, d.File.Name, phiAccess{
		Patients: []uuid.UUID{pid}, OnBehalfOf: onBehalfOf,
		Entities: []audit.Entity{{Type: "Patient", ID: pid}, {Type: "DocumentReference", ID: d.ID, Version: d.Version}},
	})
}

// GET /portal/patients/{pid}/documents/{did}/file: the file, inline, for
// viewing and printing. Another patient's, a retracted and a hidden type's
// document are not found alike.
func (s *server) portalDocumentFile(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	did, ok := pathID(c, "did")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, portaluser.PermDocuments)
	if err != nil {
		fail(c, err)
		return
	}
	d, found, err := documents.VisibleOne(c.Request.Context(), s.Pool, pid, did)
	s.deliverDocumentFile(c, pid, behalfOf(g), d, found, err)
}
