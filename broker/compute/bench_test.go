package compute_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/compute"
)

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// get times one GET with a token.
func get(b *testing.B, url, token string) time.Duration {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Auth-Token", token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	return elapsed
}

// BenchmarkServerShowAddedLatency: a server show through the broker (HTTP,
// token validation, index lookup, peer call, broker-kept attributes,
// flavor, JSON) against the same peer call made directly.
func BenchmarkServerShowAddedLatency(b *testing.B) {
	se := newServersEnv(b)
	c := se.admin(b)
	s := create(b, c, servers.CreateOpts{Name: "bench", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(b, c, s.ID, "ACTIVE")
	e, err := se.Index.Get(se.Ctx, compute.KindServer, s.ID, "")
	if err != nil {
		b.Fatal(err)
	}
	m, _ := se.Pool.Get(e.PeerID)
	url := c.ServiceURL("servers", s.ID)
	token := c.TokenID
	get(b, url, token) // warm the connection and the token cache
	viaBroker := make([]time.Duration, 0, b.N)
	direct := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		viaBroker = append(viaBroker, get(b, url, token))
		start := time.Now()
		if _, err := m.Cloud.GetServer(se.Ctx, e.PeerResourceID); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(ms(quantile(viaBroker, 0.5)-quantile(direct, 0.5)), "added-p50-ms")
	b.ReportMetric(ms(quantile(viaBroker, 0.99)-quantile(direct, 0.99)), "added-p99-ms")
}

// BenchmarkServerListDetail: a detailed list of 20 servers spread over two
// peers (fan-out, merge, order, page).
func BenchmarkServerListDetail(b *testing.B) {
	se := newServersEnv(b)
	c := se.admin(b)
	for i := range 20 {
		zone := []string{"local-a", "local-b"}[i%2]
		create(b, c, servers.CreateOpts{Name: fmt.Sprintf("bench-%02d", i), FlavorRef: "42", ImageRef: se.Seeded[zone].ImageID, Networks: "none"})
	}
	url := c.ServiceURL("servers", "detail")
	get(b, url, c.TokenID)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		lat = append(lat, get(b, url, c.TokenID))
	}
	b.StopTimer()
	b.ReportMetric(ms(quantile(lat, 0.5)), "p50-ms")
	b.ReportMetric(ms(quantile(lat, 0.99)), "p99-ms")
}
