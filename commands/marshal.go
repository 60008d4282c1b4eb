package commands

import (
	"encoding/json"
	"fmt"

	"github.com/portico-health/portico/domain"
)

func marshal(e domain.Event) (json.RawMessage, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return b, nil
}
