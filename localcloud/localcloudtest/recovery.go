package localcloudtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// World is a little of everything a cloud holds, made by Populate, so a
// test can drop the cloud, build another on the same data directory and
// hosts, and check with Check that all of it came back.
type World struct {
	Seeded  localcloud.Seeded
	Keypair string
	// Running is ACTIVE with volume Attached, on the seeded network and
	// on port Port of Network.
	Running string
	// Other is ACTIVE (SHUTOFF when Populate was asked to stop it), with
	// an address from Subnet.
	Other    string
	Network  string
	Subnet   string
	Port     string
	Attached string // a volume in-use on Running
	Free     string // an available volume
	Queued   string // an image with no data yet
	// Lists is every list the cloud answered, as JSON, and Capacity its
	// capacity, at the end of Populate.
	Lists    map[string]string
	Capacity registry.Capacity
}

// Poll bounds the waits of Populate, Check and Exercise.
type Poll struct {
	Timeout time.Duration
	Every   time.Duration
}

// WaitFor polls cond until it holds or p.Timeout passes.
func (p Poll) WaitFor(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(p.Timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still not so after %s; last seen: %s", what, p.Timeout, seen)
		}
		time.Sleep(p.Every) // polling a transition, not a correctness gate
	}
}

func (p Poll) server(tb testing.TB, c *localcloud.Cloud, id string, want peers.ServerStatus) {
	tb.Helper()
	p.WaitFor(tb, "server "+id+" "+string(want), func() (bool, string) {
		s, err := c.GetServer(context.Background(), id)
		return err == nil && s.Status == want, fmt.Sprintf("%s %q %v", s.Status, s.Fault, err)
	})
}

func (p Poll) volume(tb testing.TB, c *localcloud.Cloud, id string, want peers.VolumeStatus) {
	tb.Helper()
	p.WaitFor(tb, "volume "+id+" "+string(want), func() (bool, string) {
		v, err := c.GetVolume(context.Background(), id)
		return err == nil && v.Status == want, fmt.Sprintf("%s %v", v.Status, err)
	})
}

func (p Poll) gone(tb testing.TB, what string, get func() error) {
	tb.Helper()
	p.WaitFor(tb, what+" gone", func() (bool, string) {
		err := get()
		return errors.Is(err, peers.ErrNotFound), fmt.Sprint(err)
	})
}

// must takes a call's two results and returns a check of them that fails
// tb, naming what, on an error: must(c.GetServer(ctx, id))(tb, "GetServer").
func must[T any](v T, err error) func(tb testing.TB, what string) T {
	return func(tb testing.TB, what string) T {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// Populate makes a World in c (seeded already): a keypair, a network with
// a subnet and a port, two servers of flavor, two volumes (one attached),
// a queued image. With stop, the second server is stopped.
func Populate(tb testing.TB, c *localcloud.Cloud, seeded localcloud.Seeded, flavor string, stop bool, p Poll) World {
	tb.Helper()
	ctx := context.Background()
	w := World{Seeded: seeded}
	w.Keypair = must(c.CreateKeypair(ctx, peers.KeypairSpec{Name: "recover-key", Project: "rp"}))(tb, "CreateKeypair").Name
	w.Network = must(c.CreateNetwork(ctx, peers.NetworkSpec{Name: "recover-net", Project: "rp"}))(tb, "CreateNetwork").ID
	w.Subnet = must(c.CreateSubnet(ctx, peers.SubnetSpec{Name: "recover-subnet", Project: "rp", NetworkID: w.Network, CIDR: "10.77.0.0/24"}))(tb, "CreateSubnet").ID
	w.Port = must(c.CreatePort(ctx, peers.PortSpec{Name: "recover-port", Project: "rp", NetworkID: w.Network}))(tb, "CreatePort").ID
	w.Running = must(c.CreateServer(ctx, peers.ServerSpec{
		Name: "recover-running", Project: "rp", FlavorID: flavor, ImageID: seeded.ImageID, KeyName: w.Keypair,
		Metadata: map[string]string{"broker_id": "b-1"},
		Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}, {PortID: w.Port}},
	}))(tb, "CreateServer").ID
	w.Other = must(c.CreateServer(ctx, peers.ServerSpec{
		Name: "recover-other", Project: "rp", FlavorID: flavor, ImageID: seeded.ImageID,
		Networks: []peers.NetworkAttachment{{NetworkID: w.Network}},
	}))(tb, "CreateServer").ID
	w.Attached = must(c.CreateVolume(ctx, peers.VolumeSpec{Name: "recover-attached", Project: "rp", SizeGiB: 1}))(tb, "CreateVolume").ID
	w.Free = must(c.CreateVolume(ctx, peers.VolumeSpec{Name: "recover-free", Project: "rp", SizeGiB: 1}))(tb, "CreateVolume").ID
	w.Queued = must(c.CreateImage(ctx, peers.ImageSpec{Name: "recover-queued", Project: "rp", DiskFormat: "raw", ContainerFormat: "bare"}))(tb, "CreateImage").ID
	p.server(tb, c, w.Running, peers.ServerActive)
	p.server(tb, c, w.Other, peers.ServerActive)
	p.volume(tb, c, w.Attached, peers.VolumeAvailable)
	p.volume(tb, c, w.Free, peers.VolumeAvailable)
	must(c.AttachVolume(ctx, w.Running, w.Attached))(tb, "AttachVolume")
	p.volume(tb, c, w.Attached, peers.VolumeInUse)
	if stop {
		if err := c.ServerAction(ctx, w.Other, peers.ActionStop); err != nil {
			tb.Fatalf("stop: %v", err)
		}
		p.server(tb, c, w.Other, peers.ServerShutoff)
	}
	w.Lists = Lists(tb, c)
	w.Capacity = must(c.Capacity(ctx))(tb, "Capacity")
	return w
}

// Lists answers every list of c, as JSON, by kind.
func Lists(tb testing.TB, c *localcloud.Cloud) map[string]string {
	tb.Helper()
	ctx, all := context.Background(), peers.ListOptions{}
	js := func(v any, err error) string {
		tb.Helper()
		if err != nil {
			tb.Fatalf("list: %v", err)
		}
		b, _ := json.MarshalIndent(v, "", " ")
		return string(b)
	}
	return map[string]string{
		"servers":  js(c.ListServers(ctx, all)),
		"volumes":  js(c.ListVolumes(ctx, all)),
		"networks": js(c.ListNetworks(ctx, all)),
		"subnets":  js(c.ListSubnets(ctx, all)),
		"ports":    js(c.ListPorts(ctx, all)),
		"images":   js(c.ListImages(ctx, all)),
		"keypairs": js(c.ListKeypairs(ctx, all)),
	}
}

// Check fails tb unless c answers every list and its capacity exactly as
// the cloud w was made in did.
func (w World) Check(tb testing.TB, c *localcloud.Cloud) {
	tb.Helper()
	got := Lists(tb, c)
	for _, kind := range []string{"servers", "volumes", "networks", "subnets", "ports", "images", "keypairs"} {
		if got[kind] != w.Lists[kind] {
			tb.Errorf("%s after recovery:\n%s\nbefore:\n%s", kind, got[kind], w.Lists[kind])
		}
	}
	// Object bytes are the filesystem's size and use (no quota), which
	// other processes move; the object store's tests check its own.
	capa := must(c.Capacity(context.Background()))(tb, "Capacity")
	capa.ObjectBytes = w.Capacity.ObjectBytes
	if capa != w.Capacity {
		tb.Errorf("capacity after recovery = %+v, before %+v", capa, w.Capacity)
	}
}

// Exercise uses a recovered World in c, then deletes all of it: a new port
// gets an address no earlier port has, power actions, detach and deletes
// work.
func (w World) Exercise(tb testing.TB, c *localcloud.Cloud, p Poll) {
	tb.Helper()
	ctx := context.Background()
	taken := map[string]bool{}
	for _, port := range must(c.ListPorts(ctx, peers.ListOptions{}))(tb, "ListPorts") {
		for _, f := range port.FixedIPs {
			taken[f.IPAddress] = true
		}
	}
	np := must(c.CreatePort(ctx, peers.PortSpec{Project: "rp", NetworkID: w.Network}))(tb, "CreatePort")
	for _, f := range np.FixedIPs {
		if _, err := netip.ParseAddr(f.IPAddress); err != nil || taken[f.IPAddress] {
			tb.Errorf("new port got %s, which is taken or not an address (taken: %v)", f.IPAddress, taken)
		}
	}
	if err := c.DeletePort(ctx, np.ID); err != nil {
		tb.Errorf("DeletePort: %v", err)
	}
	if s := must(c.GetServer(ctx, w.Other))(tb, "GetServer"); s.Status == peers.ServerShutoff {
		if err := c.ServerAction(ctx, w.Other, peers.ActionStart); err != nil {
			tb.Fatalf("start after recovery: %v", err)
		}
		p.server(tb, c, w.Other, peers.ServerActive)
	}
	if err := c.ServerAction(ctx, w.Running, peers.ActionHardReboot); err != nil {
		tb.Fatalf("hard reboot after recovery: %v", err)
	}
	p.server(tb, c, w.Running, peers.ServerActive)
	if err := c.DetachVolume(ctx, w.Running, w.Attached); err != nil {
		tb.Fatalf("detach after recovery: %v", err)
	}
	p.volume(tb, c, w.Attached, peers.VolumeAvailable)
	for _, id := range []string{w.Running, w.Other} {
		if err := c.DeleteServer(ctx, id); err != nil {
			tb.Fatalf("DeleteServer: %v", err)
		}
	}
	for _, id := range []string{w.Running, w.Other} {
		p.gone(tb, "server "+id, func() error { _, err := c.GetServer(ctx, id); return err })
	}
	for _, id := range []string{w.Attached, w.Free} {
		if err := c.DeleteVolume(ctx, id); err != nil {
			tb.Fatalf("DeleteVolume: %v", err)
		}
		p.gone(tb, "volume "+id, func() error { _, err := c.GetVolume(ctx, id); return err })
	}
	for _, err := range []error{
		c.DeletePort(ctx, w.Port), c.DeleteSubnet(ctx, w.Subnet), c.DeleteNetwork(ctx, w.Network),
		c.DeleteKeypair(ctx, w.Keypair), c.DeleteImage(ctx, w.Queued),
	} {
		if err != nil {
			tb.Errorf("cleanup after recovery: %v", err)
		}
	}
	if ports := must(c.ListPorts(ctx, peers.ListOptions{}))(tb, "ListPorts"); len(ports) != 0 {
		tb.Errorf("ports left: %+v", ports)
	}
}
