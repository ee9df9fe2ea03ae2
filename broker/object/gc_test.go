package object_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// TestReaper: a gone project's containers are emptied on their peer and
// forgotten once the grace has passed, its account record too; a live
// project's are untouched; a container whose peer was removed is
// forgotten.
func TestReaper(t *testing.T) {
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	svc := &object.Service{Pool: e.Pool, Placer: policy.Default{}, Store: e.Store, Log: e.Log}
	ctx := e.Ctx
	gone, alive := object.Caller{Project: "gone", Write: true}, object.Caller{Project: "alive", Write: true}
	for _, c := range []object.Caller{gone, alive} {
		if _, err := svc.CreateContainer(ctx, c, c.Project, "box", object.MetaChange{}, object.ACLChange{}, nil); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b/c"} {
			if _, err := svc.PutObject(ctx, c, c.Project, "box", name, strings.NewReader("data"), object.PutSpec{Size: 4}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.UpdateAccount(ctx, c, c.Project, object.MetaChange{Set: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
	}
	peerID, peerContainer, err := svc.PeerOf(ctx, "gone", "box")
	if err != nil {
		t.Fatal(err)
	}
	peerIDs := map[string]bool{peerID: true}
	r := &object.Reaper{Service: svc, Grace: time.Hour, Owners: func(context.Context) (map[string]bool, map[string]bool, error) {
		return map[string]bool{"alive": true}, peerIDs, nil
	}}
	now := time.Now()
	if n, err := r.Collect(ctx, now); err != nil || n != 0 {
		t.Fatalf("first pass removed %d (%v); want none within the grace", n, err)
	}
	if n, err := r.Collect(ctx, now.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("second pass removed %d (%v); want the container and the account", n, err)
	}
	m, _ := e.Pool.Get(peerID)
	if _, err := m.Cloud.(peers.Objects).ContainerStats(ctx, peerContainer); err == nil {
		t.Fatal("the gone project's container is still on its peer")
	}
	admin := object.Caller{Admin: true}
	if _, err := svc.GetContainer(ctx, admin, "gone", "box"); err == nil {
		t.Fatal("the gone project's container record is still there")
	}
	if info, err := svc.GetAccount(ctx, admin, "gone"); err != nil || len(info.Meta) != 0 {
		t.Fatalf("the gone project's account = %+v, %v", info, err)
	}
	if info, err := svc.GetContainer(ctx, alive, "alive", "box"); err != nil || info.Objects != 2 {
		t.Fatalf("the live project's container = %+v, %v", info, err)
	}

	// The peer is removed from the registry: its containers are
	// forgotten (their data went with it).
	delete(peerIDs, peerID)
	r.Owners = func(context.Context) (map[string]bool, map[string]bool, error) {
		return map[string]bool{"alive": true}, peerIDs, nil
	}
	if n, err := r.Collect(ctx, now.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("pass after the peer went removed %d (%v); want none within the grace", n, err)
	}
	if n, err := r.Collect(ctx, now.Add(3*time.Hour)); err != nil || n != 1 {
		t.Fatalf("pass after the grace removed %d (%v); want the container record", n, err)
	}
	if _, err := svc.GetContainer(ctx, alive, "alive", "box"); err == nil {
		t.Fatal("a removed peer's container record is still there")
	}
}

// TestReaperOrphanedContainers: a container the broker named on a peer
// that no record names (a create cut short before its record) is removed
// once seen orphaned for the grace; one holding objects is kept, and so
// are recorded containers and containers the broker did not name.
func TestReaperOrphanedContainers(t *testing.T) {
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	svc := &object.Service{Pool: e.Pool, Placer: policy.Default{}, Store: e.Store, Log: e.Log}
	ctx := e.Ctx
	alice := object.Caller{Project: "alice", Write: true}
	if _, err := svc.CreateContainer(ctx, alice, "alice", "box", object.MetaChange{}, object.ACLChange{}, nil); err != nil {
		t.Fatal(err)
	}
	peerID, recorded, err := svc.PeerOf(ctx, "alice", "box")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := e.Pool.Get(peerID)
	objects := m.Cloud.(peers.Objects)
	orphan, full, foreign := object.PeerContainerPrefix+"cut-short", object.PeerContainerPrefix+"holds-data", "not-the-brokers"
	for _, name := range []string{orphan, full, foreign} {
		if err := objects.CreateContainer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := objects.PutObject(ctx, full, "x", strings.NewReader("x"), peers.ObjectSpec{Size: 1}); err != nil {
		t.Fatal(err)
	}
	r := &object.Reaper{Service: svc, Grace: time.Hour, Owners: func(context.Context) (map[string]bool, map[string]bool, error) {
		return map[string]bool{"alice": true}, map[string]bool{peerID: true}, nil
	}}
	now := time.Now()
	if n, err := r.Collect(ctx, now); err != nil || n != 0 {
		t.Fatalf("first pass removed %d (%v); want none within the grace", n, err)
	}
	if n, err := r.Collect(ctx, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("pass after the grace removed %d (%v); want the one empty orphan", n, err)
	}
	got, err := objects.ListContainers(ctx, "", "", 0)
	if want := []string{recorded, full, foreign}; err != nil || !sameSet(got, want) {
		t.Fatalf("containers on the peer after the pass = %q, %v; want %q", got, err, want)
	}
}

// TestReaperLeavesOtherInstallations: two installations sharing a peer
// name their containers apart, and one's reaper never removes the
// other's (here an empty container, which would look orphaned to it).
func TestReaperLeavesOtherInstallations(t *testing.T) {
	e := brokertest.New(t, []brokertest.Peer{{Name: "p1"}}, nil)
	ctx := e.Ctx
	ours := &object.Service{Pool: e.Pool, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "installation-a"}
	theirs := &object.Service{Pool: e.Pool, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "installation-b"}
	if ours.PeerPrefix() == theirs.PeerPrefix() || !strings.HasPrefix(ours.PeerPrefix(), object.PeerContainerPrefix) {
		t.Fatalf("prefixes %q and %q; want two distinct ones under %q", ours.PeerPrefix(), theirs.PeerPrefix(), object.PeerContainerPrefix)
	}
	peerID := e.Pool.Members()[0].Peer.ID
	objects := e.Pool.Members()[0].Cloud.(peers.Objects)
	ourOrphan, theirEmpty := ours.PeerPrefix()+"cut-short", theirs.PeerPrefix()+"empty-for-now"
	for _, name := range []string{ourOrphan, theirEmpty} {
		if err := objects.CreateContainer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	r := &object.Reaper{Service: ours, Grace: time.Hour, Owners: func(context.Context) (map[string]bool, map[string]bool, error) {
		return map[string]bool{}, map[string]bool{peerID: true}, nil
	}}
	now := time.Now()
	for _, at := range []time.Time{now, now.Add(time.Hour)} {
		if _, err := r.Collect(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := objects.ListContainers(ctx, "", "", 0)
	if want := []string{theirEmpty}; err != nil || !sameSet(got, want) {
		t.Fatalf("containers on the peer after our passes = %q, %v; want only theirs %q", got, err, want)
	}
}

func sameSet(a, b []string) bool {
	set := map[string]int{}
	for _, s := range a {
		set[s]++
	}
	for _, s := range b {
		set[s]--
	}
	for _, n := range set {
		if n != 0 {
			return false
		}
	}
	return true
}
