package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

const scaled = `eve_template_version: 1
parameters:
  n: {type: number, default: 3}
  size: {type: number, default: 1}
resources:
  net: {type: Network}
  web:
    type: Server
    count: {get_param: n}
    placement: {peer: local}
    properties: {name: "web-%index%", flavor: m1.nano, image: ` + localcloud.SeedImageName + `, networks: [{network: {get_resource: net}}]}
  data: {type: Volume, placement: {peer: local}, properties: {size: {get_param: size}}}
outputs:
  names: {value: {get_attr: [web, name]}}
`

// TestUpdateScalesDownAndGrowsInPlace: fewer replicas delete the extra
// ones, a bigger volume is extended, not replaced.
func TestUpdateScalesDownAndGrowsInPlace(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("b1")
	d, _, err := e.Create(ctx, "scaled", owner("p1"), Spec{Source: scaled})
	if err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete || fmt.Sprint(d.Outputs["names"]) != "[web-0 web-1 web-2]" {
		t.Fatalf("%s %s %v", d.Status, d.Error, d.Outputs)
	}
	volID := d.Resources["data"].ID
	d, plan, err := e.Update(ctx, d.ID, Spec{Source: scaled, Parameters: map[string]any{"n": 1, "size": 3}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Action{}
	for _, s := range plan.Steps {
		got[s.Key] = s.Action
	}
	want := map[string]Action{"net@local": ActNoop, "web[0]": ActNoop, "web[1]": ActDelete, "web[2]": ActDelete, "data": ActUpdate}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete || d.Resources["data"].ID != volID || fmt.Sprint(d.Outputs["names"]) != "[web-0]" {
		t.Fatalf("%s %s data %s (was %s) %v", d.Status, d.Error, d.Resources["data"].ID, volID, d.Outputs)
	}
	local, _ := env.Pool.Lookup("local")
	if v, err := local.Cloud.GetVolume(ctx, env.peerID(t, "volume", volID)); err != nil || v.SizeGiB != 3 {
		t.Fatalf("volume %+v %v", v, err)
	}
	if n := env.tagged(t, d.ID)["local"]; n != 3 { // net, web[0], data
		t.Fatalf("%d tagged on local", n)
	}
}

// TestDeleteWhileApplying: a delete that lands mid-apply stops the apply
// after its running steps and removes everything.
func TestDeleteWhileApplying(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("b1")
	d, _, err := e.Create(ctx, "doomed", owner("p1"), Spec{Source: scaled})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	env.hooks["local"].set(func(ctx context.Context, kind string) error {
		if kind != "server" {
			return nil
		}
		env.hooks["local"].mu.Lock()
		wasFirst := first
		first = false
		env.hooks["local"].mu.Unlock()
		if wasFirst {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}, nil)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, d.ID) }()
	<-entered
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	final, err := e.Get(ctx, d.ID)
	if err != nil || final.Status != StatusDeleted || len(final.Resources) != 0 {
		t.Fatalf("%v %s %s %v", err, final.Status, final.Error, final.Resources)
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("left behind %v", got)
	}
	evs, _, _ := e.Events(ctx, d.ID, 0)
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	if !strings.Contains(strings.Join(actions, " "), "deleted") {
		t.Fatalf("events %v", actions)
	}
}

func TestTooManyInstancesAreRefusedAtPlan(t *testing.T) {
	env := newEnv(t)
	_, _, err := env.engine("b1").Create(env.Ctx, "big", owner("p1"), Spec{Source: scaled, Parameters: map[string]any{"n": 400}})
	if err == nil || !strings.Contains(err.Error(), "a deployment holds at most 300") {
		t.Fatalf("err = %v", err)
	}
}

func TestAFollowerPinnedElsewhereIsRefused(t *testing.T) {
	env := newEnv(t)
	src := strings.Replace(webV1, "  data: {type: Volume, properties: {size: 1}}", "  data: {type: Volume, placement: {peer: local}, properties: {size: 1}}", 1)
	_, _, err := env.engine("b1").Create(env.Ctx, "x", owner("p1"), Spec{Source: src})
	if err == nil || !strings.Contains(err.Error(), "resources.data.placement.peer: pinned to local, but it must sit with app, which is on remote") {
		t.Fatalf("err = %v", err)
	}
}

// TestKeypairMadeButNotRecordedIsDeleted: keypairs carry no tags, so a
// crash right after the broker made one is covered by its name.
func TestKeypairMadeButNotRecordedIsDeleted(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	src := "eve_template_version: 1\nresources:\n  key: {type: Keypair, properties: {name: crash-key}}\n"
	a := env.engine("a")
	d, _, err := a.Create(ctx, "k", owner("p1"), Spec{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, crash := context.WithCancel(ctx)
	defer crash()
	a.Resources = &crashAfterKeypair{Resources: a.Resources, crash: crash}
	if err := a.Run(runCtx, d.ID); err == nil {
		t.Fatal("the run survived its crash")
	}
	user := owner("p1").User
	if _, err := env.svc.Keypairs.Get(ctx, user, "crash-key"); err != nil {
		t.Fatalf("the broker did not make the keypair: %v", err)
	}
	b := env.engine("b")
	if _, err := b.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if d = runToEnd(t, b, ctx, d.ID); d.Status != StatusDeleted {
		t.Fatalf("%s %s", d.Status, d.Error)
	}
	if _, err := env.svc.Keypairs.Get(ctx, user, "crash-key"); err == nil {
		t.Fatal("the keypair is orphaned")
	}
}

// crashAfterKeypair ends the run (crash) right after the service made a
// keypair, before the engine hears of it.
type crashAfterKeypair struct {
	Resources
	crash func()
}

func (c *crashAfterKeypair) CreateKeypair(ctx context.Context, who resource.Caller, spec resource.KeypairSpec) (resource.Created, error) {
	k, err := c.Resources.CreateKeypair(ctx, who, spec)
	c.crash()
	return k, err
}

// TestDriftIsRepaired: a server deleted behind the deployment's back is
// planned and created again by the next update, and what refers to it
// follows.
func TestDriftIsRepaired(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("b1")
	d, _, err := e.Create(ctx, "drift", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	remote, _ := env.Pool.Lookup("remote")
	oldApp := d.Resources["app"].ID
	old := env.peerID(t, "server", oldApp)
	if err := remote.Cloud.DeleteServer(ctx, old); err != nil {
		t.Fatal(err)
	}
	// The fake deletes in the background: wait for the outcome.
	if err := e.poll(ctx, "server gone", func() (bool, error) {
		_, err := remote.Cloud.GetServer(ctx, old)
		return errors.Is(err, peers.ErrNotFound), nil
	}); err != nil {
		t.Fatal(err)
	}
	d, plan, err := e.Update(ctx, d.ID, Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Action{}
	for _, s := range plan.Steps {
		got[s.Key] = s.Action
	}
	// The attachment went with the server: it is missing too.
	if got["app"] != ActCreate || got["attach"] != ActCreate || got["web"] != ActNoop || got["data"] != ActNoop {
		t.Fatalf("plan %v", got)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete || d.Resources["app"].ID == oldApp {
		t.Fatalf("%s %s app %s", d.Status, d.Error, d.Resources["app"].ID)
	}
	if s, err := remote.Cloud.GetServer(ctx, env.peerID(t, "server", d.Resources["app"].ID)); err != nil || len(s.Volumes) != 1 {
		t.Fatalf("recreated app %+v %v", s, err)
	}
}

// setStatus reports a peer's health and waits until the pool shows it.
func setStatus(t *testing.T, env *testEnv, e *Engine, name string, st registry.Status) {
	t.Helper()
	m, _ := env.Pool.Lookup(name)
	if _, err := registry.NewPeerRegistry(env.Store).ReportHealth(env.Ctx, m.Peer.ID, registry.Health{Status: st, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.poll(env.Ctx, "pool sees "+name+" "+string(st), func() (bool, error) {
		env.Pool.Reconcile(env.Ctx)
		m, _ := env.Pool.Lookup(name)
		return m.Peer.Status == st, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAPeerDownMovesNothing: while a peer is down, an update leaves its
// instances where they are, and a resume waits for peers instead of
// failing the deployment.
func TestAPeerDownMovesNothing(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("b1")
	src := "eve_template_version: 1\nparameters: {n: {type: number, default: 1}}\nresources:\n  vol: {type: Volume, count: {get_param: n}, properties: {size: 1}}\n"
	d, _, err := e.Create(ctx, "v", owner("p1"), Spec{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	home := d.Resources["vol[0]"].PeerName
	setStatus(t, env, e, home, registry.StatusDown)
	_, plan, err := e.Update(ctx, d.ID, Spec{Source: src, Parameters: map[string]any{"n": 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range plan.Steps {
		if s.Key == "vol[0]" && (s.Action != ActNoop || s.PeerName != home) {
			t.Fatalf("vol[0]: %s on %s (was on %s, now down)", s.Action, s.PeerName, home)
		}
		if s.Key == "vol[1]" && s.PeerName == home {
			t.Fatalf("vol[1] placed on the down peer %s", home)
		}
	}
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusComplete {
		t.Fatalf("%s %s", d.Status, d.Error)
	}

	// Every peer down, mid-apply: the resume is postponed, not failed.
	other := d.Resources["vol[1]"].PeerName
	setStatus(t, env, e, other, registry.StatusDown)
	if _, _, err := e.Update(ctx, d.ID, Spec{Source: src, Parameters: map[string]any{"n": 3}}); err == nil {
		t.Fatal("an update with no peer up was accepted")
	}
	if _, err := e.transition(ctx, d.ID, func(d *Deployment) error {
		d.Status = StatusApplying
		d.Spec.Parameters = map[string]any{"n": 3}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, d.ID); !errors.Is(err, errRetryLater) {
		t.Fatalf("resume with no peer up: %v", err)
	}
	if d, _ = e.Get(ctx, d.ID); d.Status != StatusApplying {
		t.Fatalf("after a postponed resume: %s %s", d.Status, d.Error)
	}
	setStatus(t, env, e, home, registry.StatusUp)
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusComplete || len(d.Resources) != 3 {
		t.Fatalf("%s %s %d", d.Status, d.Error, len(d.Resources))
	}
}
