package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/testapp"
)

// TestReplayRecordsItsAccessBeforeShowing: what portalctl replay prints is
// PHI, so its access record, with the hash of exactly what was printed, is
// in the log.
func TestReplayRecordsItsAccessBeforeShowing(t *testing.T) {
	ctx := context.Background()
	a := testapp.New(t)
	t.Setenv("PORTAL_DATABASE_URL", a.Config.DatabaseURL)
	res, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "Harbor", AdminEmail: "admin@harbor.example", AdminPassword: "long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	meta := commands.Meta{Actor: commands.Actor{ID: res.AdminID.String(), Kind: "staff", Role: "admin", ClinicID: res.ClinicID}}
	pid, err := a.Commands.RegisterPatient(ctx, meta, commands.RegisterPatient{FirstName: "Mia", LastName: "Rivera", DateOfBirth: "2018-05-01"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"replay", "--as-of", "999999", "--patient", pid.String()}, &out); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte("Rivera")) {
		t.Fatalf("replay printed:\n%s", out.String())
	}
	sum := sha256.Sum256(out.Bytes())
	evs, err := a.Store.ReadAll(ctx, eventstore.Start, 1000, eventstore.Filter{Categories: []string{audit.Category}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		var r audit.Access
		if json.Unmarshal(e.Data, &r) == nil && r.Route == "portalctl replay" && r.BodySHA256 == hex.EncodeToString(sum[:]) &&
			len(r.Patients) == 1 && r.Patients[0] == pid && r.Agent.Kind == "system" {
			found = true
		}
	}
	if !found {
		t.Error("no access record of the replay with the hash of what it printed")
	}
}
