package fake

import (
	"context"
	"encoding/json"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

var _ localcloud.RouterDriver = (*Driver)(nil)

// Router operations, for InjectFault.
const (
	OpSetRouter    Op = "set_router"
	OpDeleteRouter Op = "delete_router"
)

// SetRouter keeps a router's plan, as a data plane would hold it.
func (d *Driver) SetRouter(ctx context.Context, hostName string, r localcloud.RouterPlan) error {
	if _, err := d.lock(ctx, OpSetRouter, hostName, r.ID); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if d.routers == nil {
		d.routers = map[string]map[string]localcloud.RouterPlan{}
	}
	if d.routers[hostName] == nil {
		d.routers[hostName] = map[string]localcloud.RouterPlan{}
	}
	d.routers[hostName][r.ID] = clonePlan(r)
	return nil
}

// DeleteRouter forgets a router's plan.
func (d *Driver) DeleteRouter(ctx context.Context, hostName, id string) error {
	if _, err := d.lock(ctx, OpDeleteRouter, hostName, id); err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, ok := d.routers[hostName][id]; !ok {
		return errf(peers.ErrNotFound, "router %s", id)
	}
	delete(d.routers[hostName], id)
	return nil
}

// Router returns the plan a host holds for a router.
func (d *Driver) Router(hostName, id string) (localcloud.RouterPlan, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.routers[hostName][id]
	return clonePlan(r), ok
}

// clonePlan deep-copies a plan (its slices are the caller's).
func clonePlan(r localcloud.RouterPlan) localcloud.RouterPlan {
	var out localcloud.RouterPlan
	b, _ := json.Marshal(r)
	_ = json.Unmarshal(b, &out)
	return out
}
