package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/contract"
	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/testpg"
)

func TestContract(t *testing.T) {
	var mu sync.Mutex
	urls := map[eventstore.Store]string{}
	open := func(t *testing.T, url string) eventstore.Store {
		pool, err := pgdb.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s, err := pgstore.Open(context.Background(), pool, pgstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		mu.Lock()
		urls[s] = url
		mu.Unlock()
		return s
	}
	contract.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, testpg.NewURL(t))
	}, contract.Options{
		Writers:          20,
		EventsPerWriter:  1000,
		GapFreePositions: true,
		OpenPeer: func(t *testing.T, primary eventstore.Store) eventstore.Store {
			mu.Lock()
			url := urls[primary]
			mu.Unlock()
			return open(t, url)
		},
	})
}
