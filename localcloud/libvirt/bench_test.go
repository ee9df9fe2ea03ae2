package libvirt_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
)

// BenchmarkCreate100Servers measures create->ACTIVE throughput of the local
// cloud on test:///default: 100 servers asked for at once, each with a NIC
// and a config drive, until all are ACTIVE (then deleted, untimed).
func BenchmarkCreate100Servers(b *testing.B) {
	requireLibvirtB(b)
	prefix := "cmxbench-" + randHex(4) + "-"
	d, err := libvirt.New(libvirt.Config{
		Hosts: []localcloud.HostConfig{{Name: "h1", URI: "test:///default", VCPUs: 64, RAMMiB: 256 << 10, DiskGiB: 10000}},
		Pool:  prefix + "pool", PoolPath: b.TempDir() + "/pool", Prefix: prefix,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		sweep(b, "test:///default", prefix)
		_ = d.Close()
	}()
	lc := localcloud.DevDefaults(b.TempDir())
	lc.Hosts = []localcloud.HostConfig{{Name: "h1", URI: "test:///default", VCPUs: 64, RAMMiB: 256 << 10, DiskGiB: 10000}}
	c, err := localcloud.New(lc, d, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeded, err := c.Seed(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = c.DeleteSubnet(context.Background(), seeded.SubnetID)
		_ = c.DeleteNetwork(context.Background(), seeded.NetworkID)
	}()
	const n = 100
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		ids := localcloudtest.CreateActive(b, c, seeded, n)
		total += time.Since(start)
		b.StopTimer()
		localcloudtest.DeleteAll(b, c, ids)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "servers/s")
}

func requireLibvirtB(b *testing.B) {
	b.Helper()
	if !libvirtHere() {
		b.Skipf("no libvirtd answers on %s; set CLOUDMUX_REQUIRE_LIBVIRT=1 to fail instead", libvirtSocket)
	}
}
