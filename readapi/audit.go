package readapi

// The PHI access trail, for auditors (role auditor, and admins) and for
// patients ("who looked at my record"). Reading the trail is itself an
// access to PHI and is recorded like any other.

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/projections/audittrail"
	"github.com/portico-health/portico/projections/patienthistory"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		auditors := api.Group("", s.requireStaffRole("auditor", "admin"))
		s.phi(auditors, "GET", "/audit/access", audit.SubtypeQuery, s.auditAccess)
		s.phi(auditors, "GET", "/audit/access/export", audit.SubtypeExport, s.auditExport)
		s.phi(auditors, "GET", "/audit/patients/:pid/history", audit.SubtypeQuery, s.auditPatientHistory)
		auditors.GET("/audit/verify", s.auditVerify)
		portal := api.Group("", s.requireSession("portal"))
		s.phi(portal, "GET", "/portal/patients/:pid/access-log", audit.SubtypeQuery, s.portalAccessLog)
	})
	notPHI["GET /api/v1/audit/verify"] = "chain heads and hashes only"
}

// auditFilter reads the filters of GET /audit/access and its export.
func (s *server) auditFilter(c *gin.Context, maxLimit int) (audittrail.Filter, bool) {
	f := audittrail.Filter{ClinicID: actorOf(c).ClinicID, ActorID: c.Query("actor_id"), Limit: 100}
	bad := map[string]string{}
	if v := c.Query("patient_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			bad["patient_id"] = "a patient id"
		}
		f.PatientID = id
	}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad[name] = "a time such as 2026-11-27T00:00:00Z"
			}
			*dst = t
		}
	}
	if v := c.Query("cursor"); v != "" {
		cur, err := audittrail.ParseCursor(v)
		if err != nil {
			bad["cursor"] = "the next_cursor of a previous page"
		}
		f.Before = &cur
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			bad["limit"] = "a whole number from 1 to " + strconv.Itoa(maxLimit)
		}
		f.Limit = n
	}
	if len(bad) > 0 {
		fail(c, domain.Invalid(bad))
		return f, false
	}
	return f, true
}

// accessOfRecords is what reading records delivers: the patients they name.
func accessOfRecords(records []audit.Access) phiAccess {
	acc := phiAccess{Patients: []uuid.UUID{}, Entities: []audit.Entity{}}
	for _, r := range records {
		acc.Entities = append(acc.Entities, audit.Entity{Type: "AuditEvent", ID: r.RecordID})
		for _, p := range r.Patients {
			if !slices.Contains(acc.Patients, p) {
				acc.Patients = append(acc.Patients, p)
			}
		}
	}
	return acc
}

// GET /audit/access?patient_id=&actor_id=&from=&to=&cursor=&limit=
func (s *server) auditAccess(c *gin.Context) {
	f, ok := s.auditFilter(c, 500)
	if !ok {
		return
	}
	records, next, err := audittrail.Find(c.Request.Context(), s.Pool, f)
	if err != nil {
		fail(c, err)
		return
	}
	if records == nil {
		records = []audit.Access{}
	}
	out := gin.H{"records": records}
	if next != nil {
		out["next_cursor"] = next.Encode()
	}
	s.deliverPHI(c, http.StatusOK, out, accessOfRecords(records))
}

// GET /audit/access/export?…: NDJSON, one FHIR R4 AuditEvent per line.
func (s *server) auditExport(c *gin.Context) {
	f, ok := s.auditFilter(c, 10000)
	if !ok {
		return
	}
	if c.Query("limit") == "" {
		f.Limit = 10000
	}
	records, next, err := audittrail.Find(c.Request.Context(), s.Pool, f)
	if err != nil {
		fail(c, err)
		return
	}
	names, err := s.actorNames(c.Request.Context(), records)
	if err != nil {
		fail(c, err)
		return
	}
	var buf bytes.Buffer
	if err := audit.WriteNDJSON(&buf, records, names); err != nil {
		fail(c, err)
		return
	}
	if next != nil {
		q := c.Request.URL.Query()
		q.Set("cursor", next.Encode())
		c.Header("Link", `<`+c.Request.URL.Path+`?`+q.Encode()+`>; rel="next"`)
	}
	s.deliverPHIBytes(c, http.StatusOK, "application/x-ndjson", buf.Bytes(), accessOfRecords(records))
}

// GET /audit/patients/{pid}/history?after=&limit=
func (s *server) auditPatientHistory(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	if _, err := s.staffPatient(c, pid); err != nil {
		fail(c, err)
		return
	}
	after, limit := int64(0), 500
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			fail(c, domain.Invalid(map[string]string{"after": "a log position"}))
			return
		}
		after = n
	}
	events, err := patienthistory.Of(c.Request.Context(), s.Pool, pid, after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	if events == nil {
		events = []patienthistory.Event{}
	}
	out := gin.H{"patient_id": pid, "events": events}
	if len(events) == limit {
		out["next_after"] = events[len(events)-1].Position
	}
	s.deliverPHI(c, http.StatusOK, out, phiAccess{Patients: []uuid.UUID{pid}, Entities: []audit.Entity{{Type: "Patient", ID: pid}}})
}

// GET /audit/verify
func (s *server) auditVerify(c *gin.Context) {
	rep, err := audittrail.Verify(c.Request.Context(), s.Pool, s.Store, nil)
	if err != nil {
		fail(c, err)
		return
	}
	out := gin.H{"ok": rep.OK, "checked": rep.Checked, "chains": rep.Chains, "heads": rep.Heads}
	if rep.FirstBad != nil {
		out["first_bad"] = rep.FirstBad
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// accessLogEntry is one access as a patient sees it.
type accessLogEntry struct {
	Recorded time.Time `json:"recorded"`
	Who      string    `json:"who"`
	Kind     string    `json:"kind"` // staff, portal, anonymous, system
	Role     string    `json:"role,omitempty"`
	Subtype  string    `json:"subtype"`
	What     []string  `json:"what"`
	Outcome  string    `json:"outcome"` // allowed, denied, failed
}

// GET /portal/patients/{pid}/access-log?cursor=
func (s *server) portalAccessLog(c *gin.Context) {
	pid, ok := pathID(c, "pid")
	if !ok {
		return
	}
	g, err := s.portalGrant(c, pid, "")
	if err != nil {
		fail(c, err)
		return
	}
	f := audittrail.Filter{ClinicID: g.ClinicID, PatientID: pid, Limit: 100}
	if v := c.Query("cursor"); v != "" {
		cur, err := audittrail.ParseCursor(v)
		if err != nil {
			fail(c, domain.Invalid(map[string]string{"cursor": "the next_cursor of a previous page"}))
			return
		}
		f.Before = &cur
	}
	records, next, err := audittrail.Find(c.Request.Context(), s.Pool, f)
	if err != nil {
		fail(c, err)
		return
	}
	names, err := s.actorNames(c.Request.Context(), records)
	if err != nil {
		fail(c, err)
		return
	}
	entries := []accessLogEntry{}
	for _, r := range records {
		e := accessLogEntry{Recorded: r.Recorded, Who: names[r.Agent.ID], Kind: r.Agent.Kind, Role: r.Agent.Role, Subtype: r.Subtype, What: []string{}}
		switch {
		case e.Who != "":
		case r.Agent.ID == "":
			e.Who = "someone not signed in"
		case r.Agent.Kind == "staff":
			e.Who = "a member of the clinic's staff"
		default:
			e.Who = "a portal user"
		}
		switch r.Outcome {
		case audit.OutcomeSuccess:
			e.Outcome = "allowed"
		case audit.OutcomeDenied:
			e.Outcome = "denied"
		default:
			e.Outcome = "failed"
		}
		for _, en := range r.Entities {
			if !slices.Contains(e.What, en.Type) {
				e.What = append(e.What, en.Type)
			}
		}
		entries = append(entries, e)
	}
	out := gin.H{"patient_id": pid, "accesses": entries}
	if next != nil {
		out["next_cursor"] = next.Encode()
	}
	s.deliverPHI(c, http.StatusOK, out, phiAccess{Patients: []uuid.UUID{pid}, OnBehalfOf: behalfOf(g),
		Entities: []audit.Entity{{Type: "Patient", ID: pid}}})
}

// actorNames are the display names of the records' agents: staff and portal
// users by name, from their own streams.
func (s *server) actorNames(ctx context.Context, records []audit.Access) (map[string]string, error) {
	names := map[string]string{}
	for _, r := range records {
		id := r.Agent.ID
		if _, done := names[id]; done || id == "" {
			continue
		}
		uid, err := uuid.Parse(id)
		if err != nil {
			names[id] = id // a system actor such as portalctl
			continue
		}
		switch r.Agent.Kind {
		case "staff":
			a, err := s.Commands.StaffAccount(ctx, uid)
			if _, refused := domain.AsError(err); err != nil && !refused {
				return nil, err
			}
			names[id] = a.Name
		case "portal":
			a, err := s.Commands.PortalAccount(ctx, uid)
			if _, refused := domain.AsError(err); err != nil && !refused {
				return nil, err
			}
			names[id] = a.Name
		}
	}
	return names, nil
}
