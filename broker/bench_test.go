package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// slowCloud answers lists after a fixed delay, like a distant cloud.
type slowCloud struct {
	*localcloud.Cloud
	delay time.Duration
}

func (s slowCloud) ListVolumes(ctx context.Context, opts peers.ListOptions) ([]peers.Volume, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Cloud.ListVolumes(ctx, opts)
}

// cinderEnv serves Cinder over the given peers and returns a member's
// token and project.
func cinderEnv(b *testing.B, ps []brokertest.Peer) (*brokertest.Env, string, string) {
	env := brokertest.New(b, ps, func(e *brokertest.Env, r chi.Router) {
		svc := &volume.Service{Pool: e.Pool, Index: e.Index, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "bench",
			Quota: quota.NewLedger(e.Store, "bench", e.Log)}
		c := &volume.Cinder{Volumes: svc, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", c.Routes)
	})
	password := env.Member(b, "bench-user", "bench", identity.RoleMember)
	provider := env.Provider(b, "bench-user", password, "bench")
	project, err := projectOf(env, provider.TokenID)
	if err != nil {
		b.Fatal(err)
	}
	return env, provider.TokenID, project
}

func createVolume(b *testing.B, env *brokertest.Env, token, body string) string {
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/volume/v3/volumes", strings.NewReader(body))
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct {
		Volume struct {
			ID string `json:"id"`
		} `json:"volume"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("create volume = %d, %v", resp.StatusCode, err)
	}
	return created.Volume.ID
}

func projectOf(env *brokertest.Env, token string) (string, error) {
	tok, err := env.Keystone.Tokens.Validate(env.Ctx, token)
	if err != nil {
		return "", err
	}
	return tok.ProjectID, nil
}

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

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkBrokerAddedLatency: a volume show through the broker (HTTP,
// token validation, index lookup, peer call, JSON) against the same
// peer call made directly. The goal is +0.3 ms p50, +1 ms p99.
func BenchmarkBrokerAddedLatency(b *testing.B) {
	env, token, project := cinderEnv(b, []brokertest.Peer{{Name: "local"}})
	id := createVolume(b, env, token, `{"volume": {"size": 1, "name": "bench"}}`)
	entry, err := env.Index.Get(env.Ctx, "volume", id, project)
	if err != nil {
		b.Fatal(err)
	}
	m := env.Pool.Members()[0]
	url := fmt.Sprintf("%s/volume/v3/%s/volumes/%s", env.Server.URL, project, id)
	get(b, url, token) // warm the connection and the token cache

	viaBroker := make([]time.Duration, 0, b.N)
	direct := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		viaBroker = append(viaBroker, get(b, url, token))
		start := time.Now()
		if _, err := m.Cloud.GetVolume(env.Ctx, entry.PeerResourceID); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(ms(quantile(viaBroker, 0.5)-quantile(direct, 0.5)), "added-p50-ms")
	b.ReportMetric(ms(quantile(viaBroker, 0.99)-quantile(direct, 0.99)), "added-p99-ms")
}

// BenchmarkFanOut10SlowPeers: a volume list over 10 peers that each take
// 50 ms, against the same list over one such peer. Lists fan out in
// parallel, so the goal is at most 1.2x.
func BenchmarkFanOut10SlowPeers(b *testing.B) {
	const delay = 50 * time.Millisecond
	slow := func(c *localcloud.Cloud) peers.Cloud { return slowCloud{Cloud: c, delay: delay} }
	measure := func(n int) time.Duration {
		ps := make([]brokertest.Peer, n)
		for i := range ps {
			ps[i] = brokertest.Peer{Name: fmt.Sprintf("peer-%02d", i), Wrap: slow}
		}
		env, token, _ := cinderEnv(b, ps)
		// Lists ask only the peers holding the project's volumes: give
		// every peer one.
		for _, p := range ps {
			createVolume(b, env, token, fmt.Sprintf(`{"volume": {"size": 1, "availability_zone": %q}}`, p.Name))
		}
		url := env.Server.URL + "/volume/v3/volumes/detail"
		get(b, url, token)
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			lat = append(lat, get(b, url, token))
		}
		return quantile(lat, 0.5)
	}
	one := measure(1)
	b.ResetTimer()
	ten := measure(10)
	b.StopTimer()
	b.ReportMetric(ms(one), "1-peer-p50-ms")
	b.ReportMetric(ms(ten), "10-peers-p50-ms")
	b.ReportMetric(float64(ten)/float64(one), "ratio")
}
