package deploy

import (
	"encoding/json"
	"testing"
)

// TestRecordsWithPeerIDsMoveToBrokerIDs: a record the engine wrote when
// it called the peers itself reads with broker IDs everywhere, the
// attachment's server and volume included.
func TestRecordsWithPeerIDsMoveToBrokerIDs(t *testing.T) {
	old := `{"id": "d1", "project": "p1", "status": "COMPLETE", "resources": {
	  "app": {"key": "app", "kind": "Server", "peer_id": "pr", "broker_id": "srv-broker", "id": "srv-peer", "status": "READY"},
	  "data": {"key": "data", "kind": "Volume", "peer_id": "pr", "broker_id": "vol-broker", "id": "vol-peer", "status": "READY"},
	  "attach": {"key": "attach", "kind": "VolumeAttachment", "peer_id": "pr", "broker_id": "att-broker", "id": "vol-peer", "status": "READY",
	    "attrs": {"server_id": "srv-peer", "volume_id": "vol-peer", "device": "/dev/vdb"}},
	  "key@pr": {"key": "key@pr", "kind": "Keypair", "peer_id": "pr", "broker_id": "key-broker", "id": "k1", "status": "READY"},
	  "half": {"key": "half", "kind": "Server", "peer_id": "pr", "broker_id": "half-broker", "status": "CREATING"}}}`
	var d Deployment
	if err := json.Unmarshal([]byte(old), &d); err != nil {
		t.Fatal(err)
	}
	upgradeIDs(&d)
	tests := []struct {
		name, key, wantID string
		wantAttrs         map[string]string
	}{
		{name: "server", key: "app", wantID: "srv-broker"},
		{name: "volume", key: "data", wantID: "vol-broker"},
		{name: "attachment", key: "attach", wantID: "vol-broker", wantAttrs: map[string]string{"server_id": "srv-broker", "volume_id": "vol-broker", "device": "/dev/vdb"}},
		{name: "keypair keeps its name", key: "key@pr", wantID: "k1"},
		{name: "unfinished create has no ID yet", key: "half", wantID: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Resources[tc.key]
			if r.ID != tc.wantID || r.LegacyBrokerID != "" {
				t.Fatalf("ID %q (legacy %q), want %q", r.ID, r.LegacyBrokerID, tc.wantID)
			}
			for k, v := range tc.wantAttrs {
				if r.Attrs[k] != v {
					t.Fatalf("attrs %v, want %s=%s", r.Attrs, k, v)
				}
			}
		})
	}
}
