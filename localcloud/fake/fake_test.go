package fake_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

// TestDomainLifecycle walks a domain through the strict state machine: each
// step is a call and what it must return, and the state after it.
func TestDomainLifecycle(t *testing.T) {
	ctx := context.Background()
	d := fake.New(localcloud.HostConfig{Name: "h"})
	if err := d.CreateVolume(ctx, "h", localcloud.PoolVolume{ID: "root", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	if err := d.UploadVolume(ctx, "h", "root", strings.NewReader("disk"), 4); err != nil {
		t.Fatal(err)
	}
	spec := localcloud.DomainSpec{ID: "dom", Name: "vm", VCPUs: 1, RAMMiB: 128, Disks: []localcloud.Disk{{VolumeID: "root", Device: "vda"}}}
	state := func() localcloud.DomainState {
		st, err := d.DomainState(ctx, "h", "dom")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	steps := []struct {
		name string
		call func() error
		want error // nil, or the sentinel the call fails with
		// states are what consecutive DomainState reads return after it.
		states []localcloud.DomainState
	}{
		{"Define", func() error { return d.DefineDomain(ctx, "h", spec) }, nil, []localcloud.DomainState{localcloud.DomainShutoff}},
		{"DefineTwice", func() error { return d.DefineDomain(ctx, "h", spec) }, peers.ErrConflict, nil},
		{"DeleteDiskInUse", func() error { return d.DeleteVolume(ctx, "h", "root") }, peers.ErrConflict, nil},
		{"Start", func() error { return d.StartDomain(ctx, "h", "dom") }, nil,
			[]localcloud.DomainState{localcloud.DomainTransitioning, localcloud.DomainRunning, localcloud.DomainRunning}},
		{"StartRunning", func() error { return d.StartDomain(ctx, "h", "dom") }, peers.ErrConflict, nil},
		{"UndefineRunning", func() error { return d.UndefineDomain(ctx, "h", "dom") }, peers.ErrConflict, nil},
		{"Reboot", func() error { return d.RebootDomain(ctx, "h", "dom", false) }, nil,
			[]localcloud.DomainState{localcloud.DomainTransitioning, localcloud.DomainRunning}},
		{"Shutdown", func() error { return d.ShutdownDomain(ctx, "h", "dom") }, nil,
			[]localcloud.DomainState{localcloud.DomainTransitioning, localcloud.DomainShutoff}},
		{"DestroyOff", func() error { return d.DestroyDomain(ctx, "h", "dom") }, nil, []localcloud.DomainState{localcloud.DomainShutoff}},
		{"Undefine", func() error { return d.UndefineDomain(ctx, "h", "dom") }, nil, nil},
		{"UndefineGone", func() error { return d.UndefineDomain(ctx, "h", "dom") }, peers.ErrNotFound, nil},
		{"DeleteDisk", func() error { return d.DeleteVolume(ctx, "h", "root") }, nil, nil},
		{"UnknownHost", func() error { return d.StartDomain(ctx, "nowhere", "dom") }, peers.ErrUnavailable, nil},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			err := st.call()
			if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
				t.Fatalf("got %v, want %v", err, st.want)
			}
			for i, want := range st.states {
				if got := state(); got != want {
					t.Fatalf("DomainState read %d = %s, want %s", i, got, want)
				}
			}
		})
		if !ok {
			return
		}
	}
	if inv := d.Contents("h"); len(inv.Domains)+len(inv.Volumes) != 0 {
		t.Fatalf("inventory at the end = %+v, want empty", inv)
	}
}

func TestInjectFaultAndContext(t *testing.T) {
	d := fake.New(localcloud.HostConfig{Name: "h", VCPUs: 3})
	boom := errors.New("boom")
	d.InjectFault(func(op fake.Op, host, id string) error {
		if op == fake.OpCreateNetwork && id == "bad" {
			return boom
		}
		return nil
	})
	if err := d.CreateNetwork(context.Background(), "h", localcloud.IsolatedNetwork{ID: "bad"}); !errors.Is(err, boom) {
		t.Fatalf("faulted CreateNetwork = %v, want the fault", err)
	}
	if err := d.CreateNetwork(context.Background(), "h", localcloud.IsolatedNetwork{ID: "good"}); err != nil {
		t.Fatalf("unfaulted CreateNetwork = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.HostResources(ctx, "h"); !errors.Is(err, context.Canceled) {
		t.Fatalf("HostResources with a cancelled context = %v", err)
	}
	res, err := d.HostResources(context.Background(), "h")
	if err != nil || res != (localcloud.HostResources{VCPUs: 3, RAMMiB: fake.DefaultRAMMiB, DiskGiB: fake.DefaultDiskGiB}) {
		t.Fatalf("HostResources = %+v, %v; want 3 vCPUs and the default RAM and disk", res, err)
	}
}
