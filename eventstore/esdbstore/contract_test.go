package esdbstore

import (
	"os"
	"testing"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/contract"
)

// TestContract holds the store to the shared contract against a real
// EventStoreDB. The suite never assumes an empty log, so any server will do.
func TestContract(t *testing.T) {
	url := os.Getenv("PORTAL_ESDB_URL")
	if url == "" {
		t.Skip("PORTAL_ESDB_URL is not set: no EventStoreDB server to run the contract suite against (docker compose up eventstoredb provides one)")
	}
	contract.Run(t, func(t *testing.T) eventstore.Store {
		s, err := Open(t.Context(), url)
		if err != nil {
			t.Fatalf("open EventStoreDB at PORTAL_ESDB_URL: %v", err)
		}
		t.Cleanup(func() { s.Close() }) // the suite closes it too; Close is idempotent
		return s
	}, contract.Options{})
}
