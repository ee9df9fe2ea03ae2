package network_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// BenchmarkNetworkListPeers: one project's network list (its network and
// subnet on the first peer) with 1 peer, and with 10 peers whose other 9
// each hold 20 networks of other projects, fake driver. The list reads
// only the peers that may hold what the project sees, so the two should
// cost about the same; p50-ms is the median list.
func BenchmarkNetworkListPeers(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var ps []brokertest.Peer
			for i := range n {
				ps = append(ps, brokertest.Peer{Name: fmt.Sprintf("p%d", i)})
			}
			e := brokertest.New(b, ps, nil)
			r := newReplica(b, e, e.Store)
			r.Discover(ctx)
			mine, err := r.CreateNetwork(ctx, "mine", network.NetworkCreate{Name: "mine", ZoneHints: []string{"p0"}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.CreateSubnet(ctx, "mine", network.SubnetCreate{NetworkID: mine.Ref.ID, CIDR: "10.0.0.0/24"}); err != nil {
				b.Fatal(err)
			}
			for i := 1; i < n; i++ {
				for j := range 20 {
					if _, err := r.CreateNetwork(ctx, fmt.Sprintf("other-%d", j), network.NetworkCreate{Name: "theirs", ZoneHints: []string{fmt.Sprintf("p%d", i)}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				v, err := r.List(ctx, "mine", false)
				took = append(took, time.Since(start))
				if err != nil || len(v.Networks) != 1 {
					b.Fatalf("list = %d networks, %v", len(v.Networks), err)
				}
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
