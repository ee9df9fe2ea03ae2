package registry

import (
	"context"
	"encoding/json"
	"strings"
)

// PeerLeftoverPrefixes are where a peer's records other than its own live:
// its name reservation, its health and its credentials. Delete removes
// them after the record, so a failed cleanup, or a probe that wrote health
// while the peer was being removed, leaves them behind.
var PeerLeftoverPrefixes = []string{peerNamePrefix, peerHealthPrefix, peerCredentialsPrefix}

// Leftovers returns those of kvs (listed under PeerLeftoverPrefixes) that
// belong to no peer: health and credentials of a peer whose record is
// gone, and a name that no record carries. It reads every peer record;
// the garbage collector (which removes what this finds, after a grace
// period) calls it, not requests.
func (r *PeerRegistry) Leftovers(ctx context.Context, kvs []KV) ([]KV, error) {
	recs, _, err := r.store.List(ctx, PeerRecordPrefix)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(recs)) // id -> name
	for _, kv := range recs {
		var p struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(kv.Value, &p) == nil {
			names[strings.TrimPrefix(kv.Key, PeerRecordPrefix)] = p.Name
		}
	}
	var out []KV
	for _, kv := range kvs {
		var owned bool
		switch {
		case strings.HasPrefix(kv.Key, peerNamePrefix):
			name, ok := names[string(kv.Value)]
			owned = ok && name == strings.TrimPrefix(kv.Key, peerNamePrefix)
		case strings.HasPrefix(kv.Key, peerHealthPrefix):
			_, owned = names[strings.TrimPrefix(kv.Key, peerHealthPrefix)]
		case strings.HasPrefix(kv.Key, peerCredentialsPrefix):
			_, owned = names[strings.TrimPrefix(kv.Key, peerCredentialsPrefix)]
		default:
			owned = true // not a record this judges
		}
		if !owned {
			out = append(out, kv)
		}
	}
	return out, nil
}
