package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

// startInProcess runs a dev broker in this process (serve, as `cloudmux
// serve -dev` runs it) and returns its address and admin token. It stops
// at cleanup.
func startInProcess(tb testing.TB) (addr, token string) {
	tb.Helper()
	return startInProcessWith(tb, nil, LogConfig{Level: "error", Format: "json"}, io.Discard)
}

// startInProcessWith is startInProcess with the configuration changed by
// edit (when not nil) and the log, as configured by lc, written to logs.
func startInProcessWith(tb testing.TB, edit func(*Config), lc LogConfig, logs io.Writer) (addr, token string) {
	tb.Helper()
	cfg := defaultConfig()
	cfg.applyDev()
	cfg.applyDefaults()
	cfg.LocalCloud.FakeTransition = 0 // guests settle at once: tests and benchmarks measure the broker
	cfg.Listen, cfg.DataDir, cfg.AdminPassword = "127.0.0.1:0", tb.TempDir(), testAdminPassword
	cfg.Prober.Interval, cfg.Prober.Timeout = Duration(2*time.Second), Duration(2*time.Second)
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, func() {}, cfg, newLogger(lc, logs), pw)
		pw.Close()
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "export CLOUDMUX_ADDR="); ok {
				addr = v
			}
			if v, ok := strings.CutPrefix(line, "export CLOUDMUX_TOKEN="); ok {
				token = v
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("in-process broker ended: %v", err)
	case <-time.After(time.Minute):
		tb.Fatal("in-process broker printed no banner")
	}
	return addr, token
}

// cloudmuxCLI runs the cloudmux binary against a broker.
func cloudmuxCLI(tb testing.TB, addr, token string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(cloudmuxBin, args...)
	cmd.Env = append(os.Environ(), "CLOUDMUX_ADDR="+addr, "CLOUDMUX_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("cloudmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// BenchmarkBrokerOverTestcloud measures what the broker adds to a call
// that reaches the real testcloud: a server show through the broker's Nova
// (token check, index lookup, the peer driver's GET, translation) against
// the same GET straight to the testcloud's Nova with gophercloud. The two
// are interleaved so drift on a shared machine hits both alike; p50 and p99
// of each and of the difference are reported.
func BenchmarkBrokerOverTestcloud(b *testing.B) {
	path := testcloudClouds(b)
	ctx := context.Background()

	// Direct: the testcloud as its tenant, from the same clouds.yaml.
	ao, eo, _, err := clouds.Parse(clouds.WithLocations(path), clouds.WithCloudName(testcloudEntry))
	if err != nil {
		b.Fatal(err)
	}
	dp, err := gcos.AuthenticatedClient(ctx, ao)
	if err != nil {
		b.Fatalf("authenticate to the testcloud: %v", err)
	}
	direct, err := gcos.NewComputeV2(dp, eo)
	if err != nil {
		b.Fatal(err)
	}

	// Through the broker: the testcloud imported as a peer.
	addr, token := startInProcess(b)
	cloudmuxCLI(b, addr, token, "peer", "import", "-cloud", testcloudEntry, "-label", "tier=public", path)
	dropTestcloudMirrors(b, path, addr, token)
	deadline := time.Now().Add(time.Minute)
	for {
		var p struct{ Status string }
		_ = json.Unmarshal([]byte(cloudmuxCLI(b, addr, token, "peer", "show", testcloudEntry, "-o", "json")), &p)
		if p.Status == "up" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the testcloud peer is %q after a minute", p.Status)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
	bp, err := gcos.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: addr + "/v3", Username: "admin", Password: testAdminPassword, DomainName: "Default", TenantName: "admin",
	})
	if err != nil {
		b.Fatal(err)
	}
	viaBroker, err := gcos.NewComputeV2(bp, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		b.Fatal(err)
	}
	imageClient, err := gcos.NewImageV2(bp, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		b.Fatal(err)
	}

	// One server on the testcloud, booted from its own public image (no
	// staging), known by its broker ID and by the testcloud's.
	pages, err := images.List(imageClient, images.ListOpts{Name: "test"}).AllPages(ctx)
	if err != nil {
		b.Fatal(err)
	}
	imgs, _ := images.ExtractImages(pages)
	if len(imgs) == 0 {
		b.Fatal("the broker lists no testcloud image \"test\"")
	}
	name := "bench-" + time.Now().Format("150405.000000")
	srv, err := servers.Create(ctx, viaBroker, servers.CreateOpts{Name: name, ImageRef: imgs[0].ID, FlavorRef: testcloudFlavor, AvailabilityZone: testcloudEntry}, nil).Extract()
	if err != nil {
		b.Fatalf("server create through the broker: %v", err)
	}
	b.Cleanup(func() { _ = servers.Delete(context.Background(), viaBroker, srv.ID).ExtractErr() })
	var peerID string
	for deadline := time.Now().Add(2 * time.Minute); peerID == ""; {
		pages, err := servers.List(direct, servers.ListOpts{Name: name}).AllPages(ctx)
		if err == nil {
			if all, _ := servers.ExtractServers(pages); len(all) == 1 && all[0].Status == "ACTIVE" {
				peerID = all[0].ID
			}
		}
		if peerID == "" && time.Now().After(deadline) {
			b.Fatalf("server %s not ACTIVE on the testcloud after 2 minutes (%v)", name, err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}

	// And one on the local cloud: a show that never leaves the broker's
	// process, the broker's own cost.
	pages, err = images.List(imageClient, images.ListOpts{Name: localcloud.SeedImageName}).AllPages(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if imgs, _ = images.ExtractImages(pages); len(imgs) == 0 {
		b.Fatal("the broker lists no seeded local image")
	}
	local, err := servers.Create(ctx, viaBroker, servers.CreateOpts{Name: name + "-local", ImageRef: imgs[0].ID, FlavorRef: testcloudFlavor, AvailabilityZone: "local"}, nil).Extract()
	if err != nil {
		b.Fatalf("local server create through the broker: %v", err)
	}

	var directLat, brokerLat, localLat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := servers.Get(ctx, direct, peerID).Extract(); err != nil {
			b.Fatalf("direct server show: %v", err)
		}
		t1 := time.Now()
		if _, err := servers.Get(ctx, viaBroker, srv.ID).Extract(); err != nil {
			b.Fatalf("server show through the broker: %v", err)
		}
		t2 := time.Now()
		if _, err := servers.Get(ctx, viaBroker, local.ID).Extract(); err != nil {
			b.Fatalf("local server show through the broker: %v", err)
		}
		directLat, brokerLat, localLat = append(directLat, t1.Sub(t0)), append(brokerLat, t2.Sub(t1)), append(localLat, time.Since(t2))
	}
	b.StopTimer()
	dp50, dp99 := percentiles(directLat)
	bp50, bp99 := percentiles(brokerLat)
	b.ReportMetric(ms(dp50), "direct-p50-ms")
	b.ReportMetric(ms(dp99), "direct-p99-ms")
	b.ReportMetric(ms(bp50), "broker-p50-ms")
	b.ReportMetric(ms(bp99), "broker-p99-ms")
	lp50, lp99 := percentiles(localLat)
	b.ReportMetric(ms(lp50), "local-p50-ms")
	b.ReportMetric(ms(lp99), "local-p99-ms")
	b.ReportMetric(ms(bp50-dp50), "added-p50-ms")
	b.ReportMetric(ms(bp99-dp99), "added-p99-ms")
	b.ReportMetric(0, "ns/op") // the pair's time is not a meaningful figure
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkStagingToTestcloud measures image staging from a local cloud
// to the real testcloud through the broker's stager: 32 MiB streamed from
// the local cloud's image store into the testcloud's Glance, hashed on the
// way and verified on both sides. Each round stages a new image (a staged
// one would be reused); the copies are deleted from the testcloud after.
func BenchmarkStagingToTestcloud(b *testing.B) {
	path := testcloudClouds(b)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := openstack.FromCloudsYAML(data, testcloudEntry, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dst, err := openstack.New(ctx, cfg)
	if err != nil {
		b.Fatalf("connect to the testcloud: %v", err)
	}
	b.Cleanup(func() { _ = dst.Close() })
	quiet := newLogger(LogConfig{Level: "error", Format: "json"}, io.Discard)
	lcfg := localcloud.DevDefaults(b.TempDir())
	src, err := localcloud.New(lcfg, fake.New(lcfg.Hosts...), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = src.Close() })
	srcM := &peers.Member{Peer: registry.Peer{ID: "local-id", Name: "local"}, Cloud: src}
	dstM := &peers.Member{Peer: registry.Peer{ID: "testcloud-id", Name: testcloudEntry}, Cloud: dst}
	stager := staging.New(registry.NewMemory(), "bench", quiet)

	const size = 32 << 20
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		b.Fatal(err)
	}
	var copies []string
	b.Cleanup(func() {
		for _, id := range copies {
			_ = dst.DeleteImage(context.Background(), id)
		}
	})
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		img, err := src.CreateImage(ctx, peers.ImageSpec{Name: "bench-staging", Project: "p", DiskFormat: "raw", ContainerFormat: "bare", Visibility: "private"})
		if err != nil {
			b.Fatal(err)
		}
		if err := src.UploadImage(ctx, img.ID, bytes.NewReader(payload), size); err != nil {
			b.Fatal(err)
		}
		if img, err = src.GetImage(ctx, img.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := stager.Ensure(ctx, img, srcM, dstM)
		if err != nil {
			b.Fatalf("staging to the testcloud: %v", err)
		}
		copies = append(copies, rep.PeerImageID)
	}
}
