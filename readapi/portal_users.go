package readapi

// Staff manage who may use the portal for a patient: invitations, portal
// users who are not contacts, the list with each user's status, revocation.

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/projections/portalusers"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		staff := api.Group("", s.requireStaffRole("admin", "staff"))
		staff.POST("/patients/:pid/portal-invitations", s.invitePortalUser)
		staff.POST("/patients/:pid/portal-users", s.addPortalUser)
		s.phi(staff, "GET", "/patients/:pid/portal-users", audit.SubtypeQuery, s.listPortalUsers)
		staff.DELETE("/patients/:pid/portal-users/:uid", s.revokePortalAccess)
	})
}

// POST /patients/{pid}/portal-invitations {contact_id?,permissions?,intake_form_ids?,intake_forms_message?}
func (s *server) invitePortalUser(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		ContactID          *uuid.UUID  `json:"contact_id"`
		Permissions        []string    `json:"permissions"`
		IntakeFormIDs      []uuid.UUID `json:"intake_form_ids"`
		IntakeFormsMessage string      `json:"intake_forms_message"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	out, err := s.Commands.InvitePortalUser(c.Request.Context(), meta, commands.InvitePortalUser{
		PatientID: pid, ContactID: body.ContactID, Permissions: body.Permissions,
		IntakeFormIDs: body.IntakeFormIDs, IntakeFormsMessage: body.IntakeFormsMessage,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"invitation_id": out.InvitationID, "portal_user_id": out.PortalUserID})
}

// POST /patients/{pid}/portal-users {name,email,relationship?,permissions?}
func (s *server) addPortalUser(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	var body struct {
		Name         string   `json:"name"`
		Email        string   `json:"email"`
		Relationship string   `json:"relationship"`
		Permissions  []string `json:"permissions"`
	}
	meta, ok := metaOf(c)
	if !ok || !bindJSON(c, &body) {
		return
	}
	out, err := s.Commands.AddPortalUser(c.Request.Context(), meta, commands.AddPortalUser{
		PatientID: pid, Name: body.Name, Email: body.Email, Relationship: body.Relationship, Permissions: body.Permissions,
	})
	if err != nil {
		fail(c, err)
		return
	}
	res := gin.H{"portal_user_id": out.PortalUserID}
	if out.InvitationID != nil {
		res["invitation_id"] = *out.InvitationID
	}
	c.JSON(http.StatusCreated, res)
}

// GET /patients/{pid}/portal-users
func (s *server) listPortalUsers(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	clinic := actorOf(c).ClinicID
	if _, err := s.staffPatient(c, pid); err != nil {
		fail(c, err)
		return
	}
	users, err := portalusers.OfPatient(c.Request.Context(), s.Pool, clinic, pid, s.now())
	if err != nil {
		fail(c, err)
		return
	}
	if users == nil {
		users = []portalusers.PortalUser{}
	}
	acc := phiAccess{Patients: []uuid.UUID{pid}, Entities: []audit.Entity{{Type: "Patient", ID: pid}}}
	for _, u := range users {
		acc.Entities = append(acc.Entities, audit.Entity{Type: "RelatedPerson", ID: u.ID})
	}
	s.deliverPHI(c, http.StatusOK, gin.H{"portal_users": users}, acc)
}

// DELETE /patients/{pid}/portal-users/{uid}
func (s *server) revokePortalAccess(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	uid, ok := pathID(c, "uid")
	if !ok {
		return
	}
	meta, ok := metaOf(c)
	if !ok {
		return
	}
	if err := s.Commands.RevokePortalAccess(c.Request.Context(), meta, commands.RevokePortalAccess{PatientID: pid, PortalUserID: uid}); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// staffPatient checks that a patient belongs to the staff member's clinic,
// from the patient's own stream; another clinic's patient is not found.
func (s *server) staffPatient(c *gin.Context, pid uuid.UUID) (uuid.UUID, error) {
	clinic, err := s.Commands.PatientClinic(c.Request.Context(), pid)
	if _, refused := domain.AsError(err); err != nil && !refused {
		return uuid.Nil, err
	}
	if err != nil || clinic != actorOf(c).ClinicID {
		return uuid.Nil, domain.NotFound("patient")
	}
	return clinic, nil
}
