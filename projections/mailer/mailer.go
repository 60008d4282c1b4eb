// Package mailer sends the portal's emails (invitations, password resets)
// as a side effect of events. It runs on the projection engine like a read
// model: one process at a time holds it, failures are retried with backoff,
// and an email that keeps failing lands in the dead-letter table, to be
// retried by `portalctl projections retry mailer` once the mail server is
// back. Delivery is at least once: the email is sent, then its delivery is
// recorded as an event whose id derives from the causing event, and an
// event whose delivery is recorded already is not sent again. A crash
// between the two sends the email twice; the Message-ID, also derived from
// the causing event, lets mail systems fold the copies.
//
// It has no tables and must never be rebuilt: that would send every email
// again. Links carry a token derived from the invitation or reset (package
// linktoken); the email holds the clinic's name and the link, nothing about
// the patient.
package mailer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/invitation"
	"github.com/portico-health/portico/domain/portaluser"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/linktoken"
	"github.com/portico-health/portico/internal/mail"
	"github.com/portico-health/portico/projections"
)

// Mailer is the side-effect handler.
type Mailer struct {
	Commands  *commands.Handlers
	Sender    mail.Sender
	PublicURL string
}

var (
	_ projections.Projection  = (*Mailer)(nil)
	_ projections.SideEffects = (*Mailer)(nil)
)

func (*Mailer) Name() string { return "mailer" }
func (*Mailer) Categories() []string {
	return []string{invitation.Category, portaluser.Category}
}
func (*Mailer) Critical() bool                                   { return false }
func (*Mailer) Setup(context.Context, *projections.Writer) error { return nil }
func (*Mailer) Tables() []string                                 { return nil }
func (*Mailer) ReportingViews() []string                         { return nil }
func (*Mailer) SideEffects() string                              { return "it sends email" }

func (m *Mailer) Apply(ctx context.Context, _ *projections.Writer, e eventstore.Envelope) error {
	switch e.Type {
	case invitation.Issued{}.EventType():
		var d invitation.Issued
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		return m.invitation(ctx, e, d.InvitationID)
	case portaluser.PasswordResetRequested{}.EventType():
		var d portaluser.PasswordResetRequested
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		return m.reset(ctx, e, d.PortalUserID, d.ResetID)
	}
	return nil // every other event of these streams sends nothing
}

// meta makes the delivery record's id derive from the causing event.
func meta(e eventstore.Envelope) commands.Meta {
	return commands.Meta{
		Actor:         commands.System("mailer"),
		CorrelationID: e.Metadata.CorrelationID,
		CausationID:   e.ID.String(),
		CommandID:     "mail:" + e.ID.String(),
	}
}

func (m *Mailer) invitation(ctx context.Context, e eventstore.Envelope, id uuid.UUID) error {
	inv, err := m.Commands.Invitation(ctx, id)
	if err != nil {
		return err
	}
	// Sent already, or no longer of use (accepted, superseded, revoked,
	// expired while the mail server was down): nothing to send.
	if inv.Delivered || inv.StateAt(m.Commands.Now()) != invitation.StatePending {
		return nil
	}
	clinic, err := m.Commands.ClinicName(ctx, inv.ClinicID)
	if err != nil {
		return err
	}
	token := m.keys().Make(linktoken.PurposeInvitation, inv.InvitationID, uuid.Nil, inv.ExpiresAt)
	msg := mail.Invitation(clinic, m.link("/invite", token), inv.ExpiresAt)
	msg.To, msg.ID = inv.Email, messageID(e)
	if err := m.Sender.Send(ctx, msg); err != nil {
		return fmt.Errorf("send invitation email: %w", err)
	}
	return m.Commands.RecordInvitationEmailDelivered(ctx, meta(e), inv.InvitationID)
}

func (m *Mailer) reset(ctx context.Context, e eventstore.Envelope, userID, resetID uuid.UUID) error {
	u, err := m.Commands.PortalUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.Reset.ID != resetID || u.Reset.Delivered || u.CheckReset(resetID, m.Commands.Now()) != nil {
		return nil
	}
	active := u.Active()
	if len(active) == 0 {
		return nil
	}
	clinic, err := m.Commands.ClinicName(ctx, active[0].ClinicID)
	if err != nil {
		return err
	}
	token := m.keys().Make(linktoken.PurposeReset, u.ID, resetID, u.Reset.ExpiresAt)
	msg := mail.PasswordReset(clinic, m.link("/reset-password", token), u.Reset.ExpiresAt)
	msg.To, msg.ID = u.Email, messageID(e)
	if err := m.Sender.Send(ctx, msg); err != nil {
		return fmt.Errorf("send reset email: %w", err)
	}
	return m.Commands.RecordResetEmailDelivered(ctx, meta(e), u.ID, resetID)
}

func (m *Mailer) keys() *linktoken.Keys { return m.Commands.LinkKeys() }

func (m *Mailer) link(path, token string) string {
	return strings.TrimRight(m.PublicURL, "/") + path + "?token=" + url.QueryEscape(token)
}

func messageID(e eventstore.Envelope) string { return e.ID.String() + "@portico" }
