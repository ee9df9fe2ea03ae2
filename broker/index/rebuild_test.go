package index_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

func newCloud(t *testing.T, name string) *localcloud.Cloud {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := localcloud.DevDefaults(t.TempDir())
	cfg.Name = name
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func marks(broker, project, id string) map[string]string {
	return map[string]string{peers.MetaBrokerID: broker, peers.MetaProject: project, peers.MetaID: id}
}

// TestRebuild: a crash between a peer's create and the index write leaves
// a marked resource the index lacks; a resource deleted behind the broker's
// back leaves an entry naming nothing. Rebuild repairs both, and touches
// nothing it cannot be sure of: another installation's resources, young
// entries, entries of a peer that did not answer.
func TestRebuild(t *testing.T) {
	ctx := context.Background()
	x := index.New(registry.NewMemory())
	a, b := newCloud(t, "a"), newCloud(t, "b")
	members := []*peers.Member{
		{Peer: registry.Peer{ID: "peer-a", Name: "a"}, Cloud: a},
		{Peer: registry.Peer{ID: "peer-b", Name: "b"}, Cloud: b},
		{Peer: registry.Peer{ID: "peer-down", Name: "down"}},
	}
	orphan, err := a.CreateVolume(ctx, peers.VolumeSpec{Name: "orphan", Project: "p1", SizeGiB: 1, Metadata: marks("me", "p1", "vol-orphan")})
	if err != nil {
		t.Fatal(err)
	}
	net, err := b.CreateNetwork(ctx, peers.NetworkSpec{Name: "n", Project: "p2", Metadata: marks("me", "p2", "net-orphan")})
	if err != nil {
		t.Fatal(err)
	}
	indexed, err := a.CreateVolume(ctx, peers.VolumeSpec{Name: "indexed", Project: "p1", SizeGiB: 1, Metadata: marks("me", "p1", "vol-indexed")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateVolume(ctx, peers.VolumeSpec{Name: "theirs", Project: "p1", SizeGiB: 1, Metadata: marks("someone-else", "p1", "vol-theirs")}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, e := range []index.Entry{
		{Kind: "volume", ID: "vol-indexed", Project: "p1", PeerID: "peer-a", PeerResourceID: indexed.ID, IndexedAt: old},
		{Kind: "volume", ID: "vol-gone", Project: "p1", PeerID: "peer-a", PeerResourceID: "no-such", IndexedAt: old},
		{Kind: "volume", ID: "vol-young", Project: "p1", PeerID: "peer-a", PeerResourceID: "not-listed-yet"},
		{Kind: "volume", ID: "vol-on-down-peer", Project: "p1", PeerID: "peer-down", PeerResourceID: "x", IndexedAt: old},
		{Kind: "volume", ID: "vol-clash", Project: "p1", PeerID: "peer-b", PeerResourceID: "elsewhere", IndexedAt: old},
	} {
		if err := x.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A marked resource claiming an ID indexed to another, live resource.
	live, err := b.CreateVolume(ctx, peers.VolumeSpec{Name: "live", Project: "p1", SizeGiB: 1, Metadata: marks("me", "p1", "vol-live")})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Put(ctx, index.Entry{Kind: "volume", ID: "vol-live", Project: "p1", PeerID: "peer-b", PeerResourceID: live.ID, IndexedAt: old}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateVolume(ctx, peers.VolumeSpec{Name: "twin", Project: "p1", SizeGiB: 1, Metadata: marks("me", "p1", "vol-live")}); err != nil {
		t.Fatal(err)
	}
	// A marked resource whose ID is indexed to a resource gone from its peer.
	clash, err := a.CreateVolume(ctx, peers.VolumeSpec{Name: "clash", Project: "p1", SizeGiB: 1, Metadata: marks("me", "p1", "vol-clash")})
	if err != nil {
		t.Fatal(err)
	}

	rep, err := x.Rebuild(ctx, members, "me", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"volumes added", rep.Added["volume"], 2}, // vol-orphan, vol-clash re-pointed
		{"networks added", rep.Added["network"], 1},
		{"volumes kept", rep.Kept["volume"], 2},       // vol-indexed, vol-live
		{"volumes removed", rep.Removed["volume"], 2}, // vol-gone, vol-clash (peer-b lacks it)
		{"conflicts", len(rep.Conflicts), 1},
		{"failed peers", len(rep.FailedPeers), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d (report %+v)", c.name, c.got, c.want, rep)
		}
	}
	lookups := []struct {
		name, kind, id, project string
		wantPeerResource        string // "" = absent
	}{
		{"orphan volume indexed in its project", "volume", "vol-orphan", "p1", orphan.ID},
		{"orphan network indexed in its project", "network", "net-orphan", "p2", net.ID},
		{"indexed volume kept", "volume", "vol-indexed", "p1", indexed.ID},
		{"entry of a deleted resource removed", "volume", "vol-gone", "p1", ""},
		{"stale entry re-pointed at the resource claiming its ID", "volume", "vol-clash", "p1", clash.ID},
		{"live entry not taken over by a twin", "volume", "vol-live", "p1", live.ID},
		{"young entry kept", "volume", "vol-young", "p1", "not-listed-yet"},
		{"entry of an unreachable peer kept", "volume", "vol-on-down-peer", "p1", "x"},
		{"another installation's resource ignored", "volume", "vol-theirs", "", ""},
	}
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			e, err := x.Get(ctx, l.kind, l.id, l.project)
			if l.wantPeerResource == "" {
				if err == nil {
					t.Fatalf("entry %+v present, want none", e)
				}
				return
			}
			if err != nil || e.PeerResourceID != l.wantPeerResource {
				t.Fatalf("Get = %+v, %v; want peer resource %s", e, err, l.wantPeerResource)
			}
		})
	}

	// A second rebuild finds nothing to change: it converges.
	again, err := x.Rebuild(ctx, members, "me", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.Added) + len(again.Removed); n != 0 {
		t.Fatalf("second rebuild changed things: %+v", again)
	}
}
