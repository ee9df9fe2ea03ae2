package deploy

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// Environment of the broker child process.
const (
	childEnv        = "CLOUDMUX_DEPLOY_CHILD"
	childConsul     = "CLOUDMUX_DEPLOY_CONSUL"
	childPrefix     = "CLOUDMUX_DEPLOY_PREFIX"
	childRPC        = "CLOUDMUX_DEPLOY_RPC"
	childID         = "CLOUDMUX_DEPLOY_ID"
	childHolder     = "CLOUDMUX_DEPLOY_HOLDER"
	crashTemplate30 = `eve_template_version: 1
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: 10.70.0.0/24}}
  web:
    type: Server
    count: 26
    placement: {spread: true}
    depends_on: [subnet]
    properties:
      name: web-%index%
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      networks: [{network: {get_resource: net}}]
`
)

// TestBrokerProcess is the child: a broker whose engine works on one
// deployment against the parent's clouds and a Consul store. It does
// nothing in a normal test run.
func TestBrokerProcess(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("the crash test's child process")
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	store, err := consul.New(consul.Config{Address: os.Getenv(childConsul), KeyPrefix: os.Getenv(childPrefix)}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var pool staticPeers
	for _, name := range []string{"local", "remote"} {
		c := &rpcCloud{url: os.Getenv(childRPC), peer: name}
		capacity, err := c.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pool = append(pool, &peers.Member{Cloud: c, Peer: registry.Peer{ID: "id-" + name, Name: name, Kind: registry.KindLocal,
			Status: registry.StatusUp, Capacity: capacity}})
	}
	svc := deploytest.New(store, pool, policy.Default{}, "crash-test", log)
	svc.Unlimited()
	e := &Engine{Store: store, Resources: svc.Adapter, Peers: svc.Adapter, Placer: policy.Default{}, Holder: os.Getenv(childHolder),
		PollInterval: 20 * time.Millisecond, Log: log}
	// A restarted broker waits for the dead one's lease to expire.
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := e.Run(ctx, os.Getenv(childID))
		if err == nil {
			return
		}
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestSIGKILLMidDeploymentResumes kills the broker process (SIGKILL)
// right after a peer created the 10th server of a 30-resource deployment
// and before the broker heard back, starts a new broker process, and
// checks the deployment completes with every resource made once, then
// deletes it leaving nothing, all checked by listing the peers.
func TestSIGKILLMidDeploymentResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Consul and two broker processes")
	}
	agent := consultest.Start(t)
	prefix := "deploy-crash-" + uuid.NewString()[:8] + "/"
	log := logrus.New()
	log.SetOutput(io.Discard)
	store, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: prefix}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, hooks := staticPool(t, "local", "remote")
	clouds := map[string]peers.Cloud{}
	for name, h := range hooks {
		clouds[name] = h
	}
	srv := httptest.NewServer(rpcHandler(clouds))
	defer srv.Close()

	svc := deploytest.New(store, pool, policy.Default{}, "crash-test", log)
	svc.Unlimited()
	e := &Engine{Store: store, Resources: svc.Adapter, Peers: svc.Adapter, Placer: policy.Default{}, Holder: "parent",
		PollInterval: 20 * time.Millisecond, Log: log}
	d, plan, err := e.Create(ctx, "crash", owner("p1"), Spec{Source: crashTemplate30})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps) != 30 {
		t.Fatalf("%d steps, want 30", len(plan.Steps))
	}

	start := func(holder string) (*exec.Cmd, *strings.Builder) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrokerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1", childConsul+"="+agent.Addr, childPrefix+"="+prefix,
			childRPC+"="+srv.URL, childID+"="+d.ID, childHolder+"="+holder)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	first, firstOut := start("broker-1")
	var mu sync.Mutex
	created := 0
	killed := make(chan struct{})
	for _, h := range hooks {
		h.set(nil, func(kind string) {
			mu.Lock()
			defer mu.Unlock()
			if kind != "server" {
				return
			}
			if created++; created == 10 {
				// The peer made it; the broker dies before it hears so.
				_ = first.Process.Kill()
				close(killed)
			}
		})
	}
	<-killed
	err = first.Wait()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ProcessState.Success() {
		t.Fatalf("the first broker was not killed: %v\n%s", err, firstOut)
	}
	for _, h := range hooks {
		h.set(nil, nil)
	}
	mid, err := e.Get(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Status != StatusApplying {
		t.Fatalf("after the kill: %s", mid.Status)
	}
	unrecorded := 0
	for _, r := range mid.Resources {
		if r.Kind == "Server" && r.ID == "" {
			unrecorded++
		}
	}
	if unrecorded == 0 {
		t.Fatal("the kill left no server the peer made but the broker did not record: adoption is not tested")
	}

	second, secondOut := start("broker-2")
	if err := second.Wait(); err != nil {
		t.Fatalf("the restarted broker: %v\n%s", err, secondOut)
	}
	final, err := e.Get(ctx, d.ID)
	if err != nil || final.Status != StatusComplete {
		t.Fatalf("resumed: %v %s %s", err, final.Status, final.Error)
	}
	count := func() (servers, total int) {
		for _, m := range pool {
			for _, kind := range sweepOrder {
				ids, err := onPeer(ctx, m.Cloud, kind, map[string]string{MetaDeployment: d.ID})
				if err != nil {
					t.Fatal(err)
				}
				total += len(ids)
				if kind == "Server" {
					servers += len(ids)
				}
			}
		}
		return servers, total
	}
	if servers, total := count(); servers != 26 || total != 30 {
		t.Fatalf("%d servers, %d resources on the peers; want 26 and 30 (a twin or an orphan)", servers, total)
	}
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, total := count(); total != 0 {
		t.Fatalf("%d resources left after delete", total)
	}
}
