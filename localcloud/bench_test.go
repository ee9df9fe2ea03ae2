package localcloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
)

// BenchmarkCreate100Servers measures create->ACTIVE throughput over the
// fake driver: 100 servers asked for at once, each with a NIC, until all
// are ACTIVE (then deleted, untimed). localcloud/libvirt has the same
// benchmark on test:///default.
func BenchmarkCreate100Servers(b *testing.B) {
	cfg := localcloud.DevDefaults(b.TempDir())
	cfg.Hosts = []localcloud.HostConfig{{Name: "host-a", URI: "fake://a", VCPUs: 64, RAMMiB: 256 << 10, DiskGiB: 10000}}
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeded, err := c.Seed(context.Background())
	if err != nil {
		b.Fatal(err)
	}
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
