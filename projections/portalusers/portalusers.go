// Package portalusers is the read model of portal accounts, their grants to
// patients and their invitations: what staff see in a patient's "portal
// users" list, and what the adoption reports count. Access checks do not
// read it; they read each account's own stream (domain/portaluser), so a
// revocation never waits for this projection.
package portalusers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.portal_users, rm.portal_grants and rm.invitations.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string { return "portalusers" }
func (Projection) Categories() []string {
	return []string{portaluser.Category, invitation.Category}
}
func (Projection) Critical() bool   { return false }
func (Projection) Tables() []string { return []string{"portal_users", "portal_grants", "invitations"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("portal_users") + ` (
		portal_user_id uuid        PRIMARY KEY,
		email          text        NOT NULL,
		name           text        NOT NULL,
		has_password   boolean     NOT NULL DEFAULT false,
		activated_at   timestamptz,
		created_at     timestamptz NOT NULL,
		version        bigint      NOT NULL)`)
	w.Queue(`CREATE TABLE ` + w.T("portal_grants") + ` (
		portal_user_id       uuid        NOT NULL,
		patient_id           uuid        NOT NULL,
		clinic_id            uuid        NOT NULL,
		relationship         text        NOT NULL,
		contact_id           uuid,
		permissions          text[]      NOT NULL,
		granted_at           timestamptz NOT NULL,
		revoked_at           timestamptz,
		latest_invitation_id uuid,
		version              bigint      NOT NULL,
		PRIMARY KEY (portal_user_id, patient_id))`)
	w.Queue(`CREATE INDEX ON ` + w.T("portal_grants") + ` (patient_id)`)
	w.Queue(`CREATE TABLE ` + w.T("invitations") + ` (
		invitation_id  uuid        PRIMARY KEY,
		portal_user_id uuid        NOT NULL,
		patient_id     uuid        NOT NULL,
		clinic_id      uuid        NOT NULL,
		contact_id     uuid,
		reason         text        NOT NULL,
		issued_at      timestamptz NOT NULL,
		expires_at     timestamptz NOT NULL,
		delivered_at   timestamptz,
		accepted_at    timestamptz,
		superseded_at  timestamptz,
		revoked_at     timestamptz,
		version        bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("invitations") + ` (clinic_id, issued_at)`)
	return nil
}

// ReportingViews: portal adoption (docs/reporting.md).
func (Projection) ReportingViews() []string {
	return []string{
		`CREATE OR REPLACE VIEW reporting.portal_invitations_weekly AS
		SELECT clinic_id,
		       date_trunc('week', issued_at)::date                       AS week,
		       count(*)                                                  AS issued,
		       count(*) FILTER (WHERE delivered_at IS NOT NULL)          AS delivered,
		       count(*) FILTER (WHERE accepted_at IS NOT NULL)           AS accepted,
		       count(*) FILTER (WHERE accepted_at IS NULL AND superseded_at IS NULL AND revoked_at IS NULL
		                              AND expires_at <= now())           AS expired,
		       count(*) FILTER (WHERE superseded_at IS NOT NULL)         AS superseded,
		       count(*) FILTER (WHERE revoked_at IS NOT NULL)            AS revoked
		FROM rm.invitations
		GROUP BY clinic_id, date_trunc('week', issued_at)`,
		`CREATE OR REPLACE VIEW reporting.portal_active_users AS
		SELECT g.clinic_id,
		       count(DISTINCT g.portal_user_id) FILTER (WHERE u.has_password AND g.revoked_at IS NULL)     AS active_users,
		       count(DISTINCT g.portal_user_id) FILTER (WHERE NOT u.has_password AND g.revoked_at IS NULL) AS invited_users,
		       count(*) FILTER (WHERE g.revoked_at IS NULL)                                                AS live_grants,
		       count(*) FILTER (WHERE g.revoked_at IS NOT NULL)                                            AS revoked_grants
		FROM rm.portal_grants g JOIN rm.portal_users u USING (portal_user_id)
		GROUP BY g.clinic_id`,
		`CREATE OR REPLACE VIEW reporting.portal_invitation_acceptance AS
		SELECT clinic_id,
		       date_trunc('week', accepted_at)::date AS week,
		       count(*)                              AS accepted,
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM accepted_at - issued_at)) / 3600 AS median_hours_to_accept,
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM accepted_at - issued_at)) / 3600 AS p90_hours_to_accept
		FROM rm.invitations
		WHERE accepted_at IS NOT NULL
		GROUP BY clinic_id, date_trunc('week', accepted_at)`,
	}
}

func decode[T any](e eventstore.Envelope) (T, error) {
	var d T
	err := json.Unmarshal(e.Data, &d)
	return d, err
}

func (p Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	at := e.Metadata.RecordedAt
	switch e.Type {
	case portaluser.Created{}.EventType():
		d, err := decode[portaluser.Created](e)
		if err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("portal_users")+` (portal_user_id, email, name, created_at, version)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (portal_user_id) DO NOTHING`, d.PortalUserID, d.Email, d.Name, at, e.Version)
	case portaluser.AccessGranted{}.EventType():
		d, err := decode[portaluser.AccessGranted](e)
		if err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("portal_grants")+` AS t (portal_user_id, patient_id, clinic_id, relationship, contact_id, permissions, granted_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (portal_user_id, patient_id) DO UPDATE SET relationship = excluded.relationship, contact_id = excluded.contact_id,
				permissions = excluded.permissions, granted_at = excluded.granted_at, revoked_at = NULL, version = excluded.version
			WHERE t.version < excluded.version`,
			d.PortalUserID, d.PatientID, d.ClinicID, d.Relationship, d.ContactID, d.Permissions, at, e.Version)
	case portaluser.AccessRevoked{}.EventType():
		d, err := decode[portaluser.AccessRevoked](e)
		if err != nil {
			return err
		}
		w.Queue(`UPDATE `+w.T("portal_grants")+` SET revoked_at = $3, version = $4 WHERE portal_user_id = $1 AND patient_id = $2 AND version < $4`,
			d.PortalUserID, d.PatientID, at, e.Version)
	case portaluser.Invited{}.EventType():
		d, err := decode[portaluser.Invited](e)
		if err != nil {
			return err
		}
		w.Queue(`UPDATE `+w.T("portal_grants")+` SET latest_invitation_id = $3, version = $4 WHERE portal_user_id = $1 AND patient_id = $2 AND version < $4`,
			d.PortalUserID, d.PatientID, d.InvitationID, e.Version)
	case portaluser.PasswordSet{}.EventType():
		d, err := decode[portaluser.PasswordSet](e)
		if err != nil {
			return err
		}
		w.Queue(`UPDATE `+w.T("portal_users")+` SET has_password = true, activated_at = coalesce(activated_at, $2), version = $3
			WHERE portal_user_id = $1 AND version < $3`, d.PortalUserID, at, e.Version)
	case portaluser.PasswordResetRequested{}.EventType(), portaluser.ResetEmailDelivered{}.EventType():
		// Nothing staff see; the version still moves on.
		w.Queue(`UPDATE `+w.T("portal_users")+` SET version = $2 WHERE portal_user_id = $1 AND version < $2`,
			uuid.MustParse(e.Stream[len(portaluser.Category)+1:]), e.Version)
	case invitation.Issued{}.EventType():
		d, err := decode[invitation.Issued](e)
		if err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("invitations")+` (invitation_id, portal_user_id, patient_id, clinic_id, contact_id, reason, issued_at, expires_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (invitation_id) DO NOTHING`,
			d.InvitationID, d.PortalUserID, d.PatientID, d.ClinicID, d.ContactID, d.Reason, at, d.ExpiresAt, e.Version)
	case invitation.EmailDelivered{}.EventType():
		return p.stamp(w, e, "delivered_at")
	case invitation.Accepted{}.EventType():
		return p.stamp(w, e, "accepted_at")
	case invitation.Superseded{}.EventType():
		return p.stamp(w, e, "superseded_at")
	case invitation.Revoked{}.EventType():
		return p.stamp(w, e, "revoked_at")
	default:
		return projections.Unknown(e)
	}
	return nil
}

// stamp sets one lifecycle time of an invitation.
func (Projection) stamp(w *projections.Writer, e eventstore.Envelope, column string) error {
	var d struct {
		InvitationID uuid.UUID `json:"invitation_id"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return err
	}
	w.Queue(`UPDATE `+w.T("invitations")+` SET `+pgx.Identifier{column}.Sanitize()+` = $2, version = $3 WHERE invitation_id = $1 AND version < $3`,
		d.InvitationID, e.Metadata.RecordedAt, e.Version)
	return nil
}

// Statuses of a portal user on a patient's list (API.md).
const (
	StatusInvited           = "invited"
	StatusActive            = "active"
	StatusInvitationExpired = "invitation_expired"
	StatusRevoked           = "revoked"
)

// LastInvitation is the newest invitation of a user for a patient.
type LastInvitation struct {
	ID          uuid.UUID  `json:"id"`
	State       string     `json:"state"`
	IssuedAt    time.Time  `json:"issued_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	AcceptedAt  *time.Time `json:"accepted_at,omitempty"`
}

// PortalUser is one linked user of a patient.
type PortalUser struct {
	ID             uuid.UUID       `json:"portal_user_id"`
	Name           string          `json:"name"`
	Email          string          `json:"email"`
	Relationship   string          `json:"relationship"`
	ContactID      *uuid.UUID      `json:"contact_id,omitempty"`
	Permissions    []string        `json:"permissions"`
	Status         string          `json:"status"`
	GrantedAt      time.Time       `json:"granted_at"`
	RevokedAt      *time.Time      `json:"revoked_at,omitempty"`
	LastInvitation *LastInvitation `json:"last_invitation,omitempty"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// OfPatient lists the portal users linked to a patient of a clinic, with
// their status at now.
func OfPatient(ctx context.Context, q Querier, clinicID, patientID uuid.UUID, now time.Time) ([]PortalUser, error) {
	rows, err := q.Query(ctx, `
		SELECT u.portal_user_id, u.name, u.email, g.relationship, g.contact_id, g.permissions, u.has_password,
		       g.granted_at, g.revoked_at,
		       i.invitation_id, i.issued_at, i.expires_at, i.delivered_at, i.accepted_at, i.superseded_at, i.revoked_at
		FROM rm.portal_grants g
		JOIN rm.portal_users u USING (portal_user_id)
		LEFT JOIN rm.invitations i ON i.invitation_id = g.latest_invitation_id
		WHERE g.clinic_id = $1 AND g.patient_id = $2
		ORDER BY g.granted_at, u.portal_user_id`, clinicID, patientID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PortalUser, error) {
		var (
			u           PortalUser
			hasPassword bool
			invID       *uuid.UUID
			issued      *time.Time
			expires     *time.Time
			superseded  *time.Time
			invRevoked  *time.Time
			li          LastInvitation
		)
		if err := r.Scan(&u.ID, &u.Name, &u.Email, &u.Relationship, &u.ContactID, &u.Permissions, &hasPassword,
			&u.GrantedAt, &u.RevokedAt, &invID, &issued, &expires, &li.DeliveredAt, &li.AcceptedAt, &superseded, &invRevoked); err != nil {
			return u, err
		}
		if invID != nil {
			li.ID, li.IssuedAt, li.ExpiresAt = *invID, *issued, *expires
			switch {
			case li.AcceptedAt != nil:
				li.State = string(invitation.StateAccepted)
			case invRevoked != nil:
				li.State = string(invitation.StateRevoked)
			case superseded != nil:
				li.State = string(invitation.StateSuperseded)
			case !now.Before(li.ExpiresAt):
				li.State = string(invitation.StateExpired)
			default:
				li.State = string(invitation.StatePending)
			}
			u.LastInvitation = &li
		}
		switch {
		case u.RevokedAt != nil:
			u.Status = StatusRevoked
		case hasPassword:
			u.Status = StatusActive
		case li.State == string(invitation.StatePending):
			u.Status = StatusInvited
		default:
			u.Status = StatusInvitationExpired
		}
		return u, nil
	})
}
