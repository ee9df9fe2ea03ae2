package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates/focus"
)

const webV1 = `eve_template_version: 1
description: a network on both clouds, one server on each, a volume on the remote one
parameters:
  image: {type: string, default: cirros-0.6-x86_64-disk}
  web_flavor: {type: string, default: m1.nano}
resources:
  net: {type: Network, properties: {name: web-net}}
  subnet:
    type: Subnet
    properties: {network: {get_resource: net}, cidr: 10.20.0.0/24}
  web:
    type: Server
    placement: {peer: local}
    depends_on: [subnet]
    properties:
      flavor: {get_param: web_flavor}
      image: {get_param: image}
      networks: [{network: {get_resource: net}}]
  app:
    type: Server
    placement: {peer: remote}
    depends_on: [subnet]
    properties:
      flavor: m1.nano
      image: {get_param: image}
      networks: [{network: {get_resource: net}}]
  data: {type: Volume, properties: {size: 1}}
  attach:
    type: VolumeAttachment
    properties: {server: {get_resource: app}, volume: {get_resource: data}}
outputs:
  web_ip: {value: {get_attr: [web, first_address]}}
  app_peer: {value: {get_attr: [app, peer]}}
  data_device: {value: {get_attr: [attach, device]}}
`

// webV2 resizes web (m1.tiny) and adds a second server on local.
var webV2 = strings.Replace(webV1, "web_flavor: {type: string, default: m1.nano}", "web_flavor: {type: string, default: m1.tiny}", 1)

func withWeb2(src string) string {
	return strings.Replace(src, "  data: {type: Volume", `  web2:
    type: Server
    placement: {peer: local}
    depends_on: [subnet]
    properties: {flavor: m1.nano, image: {get_param: image}, networks: [{network: {get_resource: net}}]}
  data: {type: Volume`, 1)
}

func runToEnd(t *testing.T, e *Engine, ctx context.Context, id string) *Deployment {
	t.Helper()
	if err := e.Run(ctx, id); err != nil {
		t.Fatalf("run: %v", err)
	}
	d, err := e.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeployAcrossTwoPeersUpdateAndDelete(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	cat := &focus.Catalog{Store: env.Store}
	v1, _, err := cat.Push(ctx, "p1", "web", []byte(webV1), "alice")
	if err != nil {
		t.Fatal(err)
	}
	v2, _, err := cat.Push(ctx, "p1", "web", []byte(withWeb2(webV2)), "alice")
	if err != nil {
		t.Fatal(err)
	}
	e := env.engine("broker-1")
	e.Resolver, e.Uses = cat, cat

	d, plan, err := e.Create(ctx, "web", owner("p1"), Spec{Template: v1.Ref(), Source: v1.Source})
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, s := range plan.Steps {
		if s.Action != ActCreate {
			t.Errorf("%s: %s, want create", s.Key, s.Action)
		}
		where[s.Key] = s.PeerName
	}
	want := map[string]string{"net@local": "local", "net@remote": "remote", "subnet@local": "local", "subnet@remote": "remote",
		"web": "local", "app": "remote", "data": "remote", "attach": "remote"}
	if fmt.Sprint(where) != fmt.Sprint(want) {
		t.Fatalf("placement %v, want %v", where, want)
	}
	if tagged := env.tagged(t, d.ID); tagged["local"]+tagged["remote"] != 0 {
		t.Fatalf("planning touched the peers: %v", tagged)
	}

	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete {
		t.Fatalf("status %s: %s", d.Status, d.Error)
	}
	if d.Outputs["app_peer"] != "remote" || d.Outputs["web_ip"] == "" || d.Outputs["web_ip"] == nil || d.Outputs["data_device"] == nil {
		t.Fatalf("outputs %v", d.Outputs)
	}
	// Each server is on its peer, on that peer's copy of the network.
	for key, peer := range map[string]string{"web": "local", "app": "remote"} {
		res := d.Resources[key]
		m, _ := env.Pool.Get(res.PeerID)
		s, err := m.Cloud.GetServer(ctx, env.peerID(t, "server", res.ID))
		if err != nil || m.Peer.Name != peer || s.Status != peers.ServerActive {
			t.Fatalf("%s: peer %s, %+v, %v", key, m.Peer.Name, s, err)
		}
		if len(s.Addresses) != 1 || s.Addresses[0].Network != "web-net" {
			t.Fatalf("%s addresses %+v", key, s.Addresses)
		}
	}
	if uses, _ := cat.UsedBy(ctx, "p1", "web", "1", false); len(uses) != 1 || uses[0].Ref != d.ID {
		t.Fatalf("web@1 used by %+v", uses)
	}
	// The services made and indexed everything: the OpenStack APIs show
	// it under the broker IDs the deployment records.
	for kind, n := range map[string]int{"server": 2, "network": 2, "subnet": 2, "volume": 1} {
		if got := env.indexed(t, kind, "p1"); got != n {
			t.Fatalf("%d %ss indexed, want %d", got, kind, n)
		}
	}
	for key, r := range d.Resources {
		if e, err := env.svc.Index.Get(ctx, strings.ToLower(string(r.Kind)), r.ID, "p1"); r.Kind != "VolumeAttachment" && (err != nil || e.PeerID != r.PeerID) {
			t.Fatalf("%s: %s is not a broker ID on %s: %+v %v", key, r.ID, r.PeerName, e, err)
		}
	}
	oldWeb, oldApp := d.Resources["web"].ID, d.Resources["app"].ID

	// Update: web resized (replaced: peers have no resize), web2 added.
	d, plan, err = e.Update(ctx, d.ID, Spec{Template: v2.Ref(), Source: v2.Source})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]Action{}
	for _, s := range plan.Steps {
		actions[s.Key] = s.Action
	}
	wantActions := map[string]Action{"net@local": ActNoop, "net@remote": ActNoop, "subnet@local": ActNoop, "subnet@remote": ActNoop,
		"web": ActReplace, "web2": ActCreate, "app": ActNoop, "data": ActNoop, "attach": ActNoop}
	if fmt.Sprint(actions) != fmt.Sprint(wantActions) {
		t.Fatalf("update plan %v, want %v", actions, wantActions)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete || d.Resources["web"].ID == oldWeb || d.Resources["app"].ID != oldApp {
		t.Fatalf("after update: %s %s, web %s (was %s), app %s (was %s)", d.Status, d.Error, d.Resources["web"].ID, oldWeb, d.Resources["app"].ID, oldApp)
	}
	local, _ := env.Pool.Lookup("local")
	if s, err := local.Cloud.GetServer(ctx, env.peerID(t, "server", d.Resources["web"].ID)); err != nil || s.FlavorID != "1" {
		t.Fatalf("resized web: %+v %v", s, err)
	}
	if _, err := env.svc.Index.Get(ctx, "server", oldWeb, "p1"); err == nil {
		t.Fatalf("the replaced server is still indexed")
	}
	if got := env.tagged(t, d.ID); got["local"] != 4 || got["remote"] != 4 {
		// local: net, subnet, web, web2; remote: net, subnet, app, data.
		t.Fatalf("tagged after update %v", got)
	}
	if uses, _ := cat.UsedBy(ctx, "p1", "web", "1", false); len(uses) != 0 {
		t.Fatalf("web@1 still used by %+v", uses)
	}

	// Delete leaves nothing on either cloud.
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusDeleted || len(d.Resources) != 0 {
		t.Fatalf("after delete: %s %s %v", d.Status, d.Error, d.Resources)
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("left behind: %v", got)
	}
	for _, kind := range []string{"server", "network", "subnet", "volume", "port"} {
		if n := env.indexed(t, kind, "p1"); n != 0 {
			t.Fatalf("%d %ss still indexed", n, kind)
		}
	}
	evs, _, err := e.Events(ctx, d.ID, 0)
	if err != nil || len(evs) < 20 || evs[len(evs)-1].Action != "deleted" {
		t.Fatalf("%d events, last %+v, %v", len(evs), evs[len(evs)-1], err)
	}
}

func TestFailureRollsBackEverywhereOrKeeps(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("broker-1")
	boom := errors.New("injected: remote volume service down")
	failVolumes := func(_ context.Context, kind string) error {
		if kind == "volume" {
			return fmt.Errorf("%w: %w", peers.ErrUnavailable, boom)
		}
		return nil
	}
	env.hooks["remote"].set(failVolumes, nil)

	d, _, err := e.Create(ctx, "web", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusFailed || !strings.Contains(d.Error, "rolled back") || !strings.Contains(d.Error, "not reachable") {
		t.Fatalf("status %s: %s", d.Status, d.Error)
	}
	if len(d.Resources) != 0 {
		t.Fatalf("rolled back deployment still records %v", d.Resources)
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("rollback left %v", got)
	}

	// Kept on failure, then retried once the peer recovers.
	d, _, err = e.Create(ctx, "kept", owner("p2"), Spec{Source: webV1, KeepOnFailure: true})
	if err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusFailed || strings.Contains(d.Error, "rolled back") {
		t.Fatalf("status %s: %s", d.Status, d.Error)
	}
	if got := env.projectResources(t, "p2"); got["local"] == 0 {
		t.Fatalf("nothing kept: %v", got)
	}
	env.hooks["remote"].set(nil, nil)
	if _, err := e.Retry(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete || d.Attempt != 2 {
		t.Fatalf("retry: %s (attempt %d) %s", d.Status, d.Attempt, d.Error)
	}
	if got := env.tagged(t, d.ID); got["local"] != 3 || got["remote"] != 4 {
		t.Fatalf("after retry %v (a twin?)", got)
	}
	if _, err := e.Retry(ctx, d.ID); !errors.Is(err, ErrState) {
		t.Fatalf("retrying a COMPLETE deployment: %v", err)
	}
}

func TestLeaseExcludesASecondEngine(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	d, _, err := env.engine("b1").Create(ctx, "web", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := env.Store.TryLock(ctx, lockPrefix+d.ID, []byte("b2"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.engine("b1").Run(ctx, d.ID); !errors.Is(err, ErrBusy) {
		t.Fatalf("run under another's lease: %v", err)
	}
	env.Store.ExpireLeases() // b2 died
	<-lease.Lost()
	if d := runToEnd(t, env.engine("b1"), ctx, d.ID); d.Status != StatusComplete {
		t.Fatalf("%s %s", d.Status, d.Error)
	}
}

// TestCrashMidApplyResumes stops the owning engine right after a peer made
// a server and before the engine could record it, then lets a second
// engine take the lease: it adopts that server (no twin), finishes, and a
// delete leaves nothing.
func TestCrashMidApplyResumes(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	src := `eve_template_version: 1
parameters:
  n: {type: number, default: 28}
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: 10.30.0.0/24}}
  web:
    type: Server
    count: {get_param: n}
    placement: {spread: true}
    depends_on: [subnet]
    properties:
      name: web-%index%
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      networks: [{network: {get_resource: net}}]
`
	a := env.engine("broker-a")
	d, plan, err := a.Create(ctx, "crash", owner("p1"), Spec{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Steps); n != 32 { // net and subnet on both peers, 28 servers
		t.Fatalf("%d steps", n)
	}
	runCtx, crash := context.WithCancel(ctx)
	defer crash()
	created := 0
	var mu sync.Mutex // the count spans both peers' hooks
	for _, h := range env.hooks {
		h.set(nil, func(kind string) {
			if kind != "server" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			created++
			if created == 10 {
				crash() // the peer made it; the engine never records it
			}
		})
	}
	if err := a.Run(runCtx, d.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("crashed run: %v", err)
	}
	for _, h := range env.hooks {
		h.set(nil, nil)
	}
	mid, err := a.Get(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Status != StatusApplying {
		t.Fatalf("after the crash: %s", mid.Status)
	}
	unrecorded := 0
	for _, r := range mid.Resources {
		if r.Kind == "Server" && r.ID == "" {
			unrecorded++
		}
	}
	if unrecorded == 0 {
		t.Fatal("the crash left no unrecorded server: the test does not test adoption")
	}
	env.Store.ExpireLeases() // the first broker is gone

	b := env.engine("broker-b")
	b.Resume(ctx) // as a restarted broker's Serve does
	// Resume starts the run in the background; Run on the same engine
	// waits its turn, so take the lease ourselves only after it settles.
	for {
		changed, done := watchStatus(t, env, d.ID)
		if done.Status == StatusComplete || done.Status == StatusFailed {
			break
		}
		<-changed
	}
	final, err := b.Get(ctx, d.ID)
	if err != nil || final.Status != StatusComplete {
		t.Fatalf("resumed: %v %s", err, final.Error)
	}
	got := env.tagged(t, d.ID)
	if got["local"]+got["remote"] != 32 {
		t.Fatalf("tagged resources %v, want 32 (a twin or an orphan)", got)
	}
	if got["local"] != 16 || got["remote"] != 16 {
		t.Fatalf("spread %v", got)
	}
	if _, err := b.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	for {
		if err := b.Run(ctx, d.ID); err == nil {
			break
		} else if !errors.Is(err, ErrBusy) {
			t.Fatal(err)
		}
		changed, _ := watchStatus(t, env, d.ID)
		<-changed
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("left behind %v", got)
	}
}

// watchStatus returns a channel closed when the deployment record changes
// (taken before reading, so no change is missed) and the record.
func watchStatus(t *testing.T, env *testEnv, id string) (<-chan struct{}, *Deployment) {
	t.Helper()
	kv, err := env.Store.Get(env.Ctx, recordKey(id))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		_, _, _ = env.Store.Watch(env.Ctx, recordKey(id), kv.ModifyIndex)
	}()
	d, err := (&Engine{Store: env.Store}).Get(env.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return ch, d
}

// TestFreedLeaseResumesAtOnce: a deployment whose owner died mid-run is
// resumed as soon as its lease is freed, not at the next ResumeInterval.
func TestFreedLeaseResumesAtOnce(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	d, _, err := env.engine("b1").Create(ctx, "web", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := env.Store.TryLock(ctx, lockPrefix+d.ID, []byte("b2"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	// The lock watch alone (Serve runs it beside the periodic Resume,
	// which would find the deployment at its first pass).
	e := env.engine("b1")
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go e.watchLocks(watchCtx)

	env.Store.ExpireLeases() // b2 died
	<-lease.Lost()
	for {
		got, err := e.Get(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == StatusComplete {
			return
		}
		if !got.Status.InProgress() {
			t.Fatalf("%s %s", got.Status, got.Error)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not resumed: %s", got.Status)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
