package esdbstore

import (
	"sync"
	"testing"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/contract"
)

// TestContractAgainstFakeServer holds the store to the shared contract
// through the real client library against fakeESDB, so that CI, which has no
// EventStoreDB, runs the whole suite too. Each test gets a fresh fake server;
// each peer is a client of its own on the primary's server, as another
// process would be.
func TestContractAgainstFakeServer(t *testing.T) {
	var mu sync.Mutex
	servers := map[eventstore.Store]*fakeESDB{}
	contract.Run(t, func(t *testing.T) eventstore.Store {
		f := newFakeESDB(t)
		s, err := Open(t.Context(), f.url())
		if err != nil {
			t.Fatalf("open the fake EventStoreDB: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		mu.Lock()
		servers[s] = f
		mu.Unlock()
		return s
	}, contract.Options{
		// Many short streams rather than a few long ones: every exact append
		// reads its stream's tail first (see precheck), so the cost grows
		// with the streams' length, not with the interleaving tested.
		Writers:         16,
		EventsPerWriter: 50,
		OpenPeer: func(t *testing.T, primary eventstore.Store) eventstore.Store {
			mu.Lock()
			f := servers[primary]
			mu.Unlock()
			if f == nil {
				t.Fatal("peer asked for a store this test did not open")
			}
			s, err := Open(t.Context(), f.url())
			if err != nil {
				t.Fatalf("open a peer on the fake EventStoreDB: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}
