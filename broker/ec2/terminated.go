package ec2

import (
	"context"
	"encoding/json"
	"time"
)

// Terminated instances: the broker forgets a deleted server at once, but
// EC2 keeps showing a terminated instance for about an hour, and clients
// rely on it (aws ec2 wait instance-terminated polls DescribeInstances
// until the state is terminated). A terminated instance is remembered as
// its last view under ec2/terminated/<project>/<ec2 id> until it expires.

// TerminatedTTL is how long terminated instances stay visible.
const TerminatedTTL = time.Hour

type terminatedRecord struct {
	Item        instanceItem `json:"item"`
	Reservation string       `json:"reservation"`
	Owner       string       `json:"owner"`
	Expires     time.Time    `json:"expires"`
}

const terminatedRoot = "ec2/terminated/"

func terminatedPrefix(project string) string { return terminatedRoot + project + "/" }

// remember records a terminated instance (best effort: a failure only
// shortens how long it is shown).
func (a *API) remember(ctx context.Context, project string, it instanceItem) {
	it.State = stateTerminated
	it.PrivateIPAddress, it.IPAddress, it.BlockDeviceMapping = "", "", list[blockDeviceItem](nil)
	it.StateReasonCode, it.StateReasonMessage = "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"
	raw, err := json.Marshal(terminatedRecord{Item: it, Reservation: it.reservation, Owner: it.owner, Expires: a.now().Add(TerminatedTTL)})
	key := terminatedPrefix(project) + it.InstanceID
	if err == nil {
		var idx uint64
		if idx, err = a.Store.CAS(context.WithoutCancel(ctx), key, raw, 0); err == nil {
			a.terminatedRecords().wrote(key, raw, idx)
		}
	}
	if err != nil {
		a.Log.WithError(err).WithField("instance", it.InstanceID).Warn("ec2: terminated instance not remembered")
	}
}

// terminated lists a project's remembered terminated instances, deleting
// the expired ones.
func (a *API) terminated(ctx context.Context, project string) ([]instanceItem, error) {
	kvs, err := a.terminatedRecords().list(ctx, terminatedPrefix(project))
	if err != nil {
		return nil, err
	}
	now := a.now()
	var out []instanceItem
	for _, kv := range kvs {
		var rec terminatedRecord
		if json.Unmarshal(kv.Value, &rec) != nil || now.After(rec.Expires) {
			_ = a.terminatedRecords().delete(ctx, kv.Key)
			continue
		}
		rec.Item.reservation, rec.Item.owner = rec.Reservation, rec.Owner
		out = append(out, rec.Item)
	}
	return out, nil
}
