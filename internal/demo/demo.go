// Package demo loads a demo clinic through the same commands staff and
// operators use, so what a newcomer sees is what the product does. Loading
// it again changes nothing.
package demo

import (
	"context"

	"github.com/portico-health/portico/commands"
)

// Sign-in details printed for newcomers. They are demo data, not secrets.
const (
	ClinicName    = "Harbor Pediatric Therapy"
	AdminEmail    = "admin@harbor.example"
	AdminPassword = "harbor-demo-admin"
)

// Summary tells a newcomer how to sign in.
type Summary struct {
	ClinicID      string
	AdminEmail    string
	AdminPassword string
	Created       bool
}

// Load creates the demo clinic and its administrator.
func Load(ctx context.Context, h *commands.Handlers) (Summary, error) {
	res, err := h.Bootstrap(ctx, commands.Bootstrap{
		ClinicName:    ClinicName,
		AdminEmail:    AdminEmail,
		AdminName:     "Avery Admin",
		AdminPassword: AdminPassword,
	})
	if err != nil {
		return Summary{}, err
	}
	return Summary{ClinicID: res.ClinicID.String(), AdminEmail: AdminEmail, AdminPassword: AdminPassword, Created: res.Created}, nil
}
