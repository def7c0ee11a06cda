package order

import (
	"encoding/json"
	"fmt"
)

// upcasters turn an event's data of schema N into schema N+1, keyed by
// type and N. Stored events are never rewritten: old shapes are upcast on
// every read, so the aggregate and projections only know the current one.
var upcasters = map[string]map[int]func(map[string]json.RawMessage) error{
	TypePlaced: {
		// Schema 2 priced orders in a currency; every schema-1 order was in USD.
		1: func(d map[string]json.RawMessage) error {
			if _, ok := d["currency"]; !ok {
				d["currency"] = json.RawMessage(`"` + DefaultCurrency + `"`)
			}
			return nil
		},
	},
}

func upcast(typ string, schema int, data []byte) ([]byte, error) {
	current := Schemas[typ]
	if schema <= 0 {
		schema = 1
	}
	if schema > current {
		return nil, fmt.Errorf("%s schema %d is newer than this build knows (%d)", typ, schema, current)
	}
	if schema == current {
		return data, nil
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("upcast %s: %w", typ, err)
	}
	for v := schema; v < current; v++ {
		up, ok := upcasters[typ][v]
		if !ok {
			return nil, fmt.Errorf("no upcaster for %s schema %d", typ, v)
		}
		if err := up(d); err != nil {
			return nil, fmt.Errorf("upcast %s schema %d: %w", typ, v, err)
		}
	}
	return json.Marshal(d)
}
