package readapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/internal/sessions"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		s.phi(api, "GET", "/me", audit.SubtypeRead, s.requireSession(), s.me)
	})
}

type linkedPatient struct {
	PatientID    uuid.UUID `json:"patient_id"`
	Name         string    `json:"name"`
	Relationship string    `json:"relationship"`
	Permissions  []string  `json:"permissions"`
}

// me answers GET /me with the caller's account; for a portal user also the
// patients linked to it. Both come from the account's own stream, the
// source every access check reads, so /me never lists a patient the API
// would then refuse, nor misses one just granted.
func (s *server) me(c *gin.Context) {
	sess := sessionOf(c)
	ctx := c.Request.Context()
	switch sess.AccountKind {
	case sessions.KindStaff:
		acct, err := s.Commands.StaffAccount(ctx, sess.AccountID)
		if err != nil {
			fail(c, err)
			return
		}
		out := accountOf(acct)
		out.ClinicID = &acct.ClinicID
		s.deliverPHI(c, http.StatusOK, out, phiAccess{})
	case sessions.KindPortal:
		u, err := s.Commands.PortalUser(ctx, sess.AccountID)
		if err != nil {
			fail(c, err)
			return
		}
		patients := []linkedPatient{}
		acc := phiAccess{Patients: []uuid.UUID{}, Entities: []audit.Entity{}}
		for _, g := range u.Active() {
			acc.Patients = append(acc.Patients, g.PatientID)
			acc.Entities = append(acc.Entities, audit.Entity{Type: "Patient", ID: g.PatientID})
			name, err := s.patientName(ctx, g.PatientID)
			if err != nil {
				fail(c, err)
				return
			}
			patients = append(patients, linkedPatient{PatientID: g.PatientID, Name: name, Relationship: g.Relationship, Permissions: g.Permissions})
		}
		s.deliverPHI(c, http.StatusOK, gin.H{
			"id": u.ID, "kind": sessions.KindPortal, "name": u.Name, "email": u.Email,
			"patients": patients,
		}, acc)
	default:
		fail(c, domain.NotFound("account"))
	}
}

// patientName is a patient's display name, from the patient's stream.
func (s *server) patientName(ctx context.Context, id uuid.UUID) (string, error) {
	p, err := s.Commands.Patient(ctx, id)
	if err != nil {
		return "", err
	}
	return p.FirstName + " " + p.LastName, nil
}

// behalfOf is the patient a portal user acts for as a proxy (a parent, a
// guardian); nil when the user is the patient.
func behalfOf(g portaluser.Grant) uuid.UUID {
	if g.Relationship == portaluser.RelationshipSelf {
		return uuid.Nil
	}
	return g.PatientID
}

// portalGrant is the caller's live grant to a patient, read from the
// account's stream on every request, so a revocation takes effect on the
// next one. A patient the caller is not linked to, or whose grant lacks
// perm (when given), is not found: ids cannot be probed.
func (s *server) portalGrant(c *gin.Context, patientID uuid.UUID, perm string) (portaluser.Grant, error) {
	sess := sessionOf(c)
	if sess.AccountKind != sessions.KindPortal {
		return portaluser.Grant{}, domain.NotFound("patient")
	}
	u, err := s.Commands.PortalUser(c.Request.Context(), sess.AccountID)
	if err != nil {
		return portaluser.Grant{}, err
	}
	g, ok := u.Access(patientID)
	if !ok || (perm != "" && !g.Allows(perm)) {
		return portaluser.Grant{}, domain.NotFound("patient")
	}
	return g, nil
}
