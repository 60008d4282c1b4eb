package audit_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain/audit"
)

// The recorder stores LinkEncoded's bytes as the event; every reader decodes
// them with encoding/json. They must be exactly what json.Marshal gives.
func TestLinkEncodedIsTheRecordsJSON(t *testing.T) {
	chain := uuid.New()
	records := []audit.Access{
		{RecordID: uuid.New(), Recorded: time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.FixedZone("x", 3600)), Subtype: audit.SubtypeQuery,
			Agent:    audit.Agent{ID: "u1", Kind: "portal", OnBehalfOf: uuid.New(), UserAgent: `<script>"&"</script>`},
			Patients: []uuid.UUID{uuid.New()}, Entities: []audit.Entity{{Type: "Appointment", ID: uuid.New(), Version: 3}},
			Route: "GET /api/v1/portal/patients/:pid/appointments", Status: 200, BodySHA256: "ab"},
		{RecordID: uuid.New(), Recorded: time.Now(), Subtype: audit.SubtypeRead, Agent: audit.Agent{Kind: "anonymous"}, Status: 401},
	}
	var prev *audit.Access
	for _, r := range records {
		linked, data := audit.LinkEncoded(r, chain, prev)
		want, err := json.Marshal(linked)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("LinkEncoded JSON differs from json.Marshal:\n got %s\nwant %s", data, want)
		}
		if linked.Hash != audit.Link(r, chain, prev).Hash {
			t.Fatal("LinkEncoded and Link seal differently")
		}
		if linked.Hash != linked.ComputeHash() {
			t.Fatal("the hash is not the record's")
		}
		prev = &linked
	}
}
