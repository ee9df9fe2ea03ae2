package staging_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/internal/metricstest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func newCloud(t testing.TB, name string) *localcloud.Cloud {
	t.Helper()
	cfg := localcloud.DevDefaults(t.TempDir())
	cfg.Name = name
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// countingSource counts downloads and can corrupt what it serves.
type countingSource struct {
	*localcloud.Cloud
	downloads atomic.Int32
	corrupt   atomic.Bool
	gate      chan struct{} // when set, downloads wait for it
}

func (c *countingSource) DownloadImage(ctx context.Context, id string) (io.ReadCloser, error) {
	c.downloads.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	rc, err := c.Cloud.DownloadImage(ctx, id)
	if err != nil || !c.corrupt.Load() {
		return rc, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	data[len(data)/2] ^= 0xff
	return io.NopCloser(bytes.NewReader(data)), nil
}

func uploadImage(t testing.TB, c *localcloud.Cloud, data []byte) peers.Image {
	t.Helper()
	ctx := context.Background()
	img, err := c.CreateImage(ctx, peers.ImageSpec{Name: "disk", Project: "p1", DiskFormat: "raw", ContainerFormat: "bare",
		Visibility: "private", Properties: map[string]string{"os_distro": "debian", peers.MetaID: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadImage(ctx, img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	img, err = c.GetImage(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func download(t *testing.T, c peers.ImageData, id string) []byte {
	t.Helper()
	rc, err := c.DownloadImage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnsure(t *testing.T) {
	ctx := context.Background()
	srcCloud, dstCloud := newCloud(t, "src"), newCloud(t, "dst")
	src := &countingSource{Cloud: srcCloud}
	srcM := &peers.Member{Peer: registry.Peer{ID: "peer-src", Name: "src"}, Cloud: src}
	dstM := &peers.Member{Peer: registry.Peer{ID: "peer-dst", Name: "dst"}, Cloud: dstCloud}
	data := randomBytes(t, 3<<20)
	img := uploadImage(t, srcCloud, data)
	s := staging.New(registry.NewMemory(), "broker-1", quiet())
	reg := prometheus.NewRegistry()
	s.Metrics = staging.NewMetrics(reg)

	t.Run("copies under the same ID, verified", func(t *testing.T) {
		rep, err := s.Ensure(ctx, img, srcM, dstM)
		if err != nil {
			t.Fatal(err)
		}
		if rep.PeerImageID != img.ID || rep.Checksum != img.Checksum || rep.Size != int64(len(data)) {
			t.Fatalf("replica %+v for image %s", rep, img.ID)
		}
		if got := download(t, dstCloud, rep.PeerImageID); !bytes.Equal(got, data) {
			t.Fatal("the copy's bytes differ from the source's")
		}
		copyImg, err := dstCloud.GetImage(ctx, rep.PeerImageID)
		if err != nil {
			t.Fatal(err)
		}
		if copyImg.Properties["os_distro"] != "debian" || copyImg.Properties[staging.MetaReplicaOf] != img.ID || copyImg.Properties[peers.MetaID] != "" {
			t.Fatalf("copy properties %v: want the user's kept, replica mark set, no index mark", copyImg.Properties)
		}
	})
	t.Run("reuses the recorded copy", func(t *testing.T) {
		before := src.downloads.Load()
		if _, err := s.Ensure(ctx, img, srcM, dstM); err != nil {
			t.Fatal(err)
		}
		if n := src.downloads.Load() - before; n != 0 {
			t.Fatalf("%d downloads for an image already staged", n)
		}
		reps, err := s.Replicas(ctx, img.ID)
		if err != nil || len(reps) != 1 {
			t.Fatalf("replicas = %v, %v", reps, err)
		}
	})
	t.Run("a copy deleted behind its back is staged again under a new ID", func(t *testing.T) {
		if err := dstCloud.DeleteImage(ctx, img.ID); err != nil {
			t.Fatal(err)
		}
		rep, err := s.Ensure(ctx, img, srcM, dstM)
		if err != nil {
			t.Fatal(err)
		}
		if rep.PeerImageID == img.ID {
			t.Fatal("reused the ID of a deleted image, which the peer never gives out again")
		}
		if got := download(t, dstCloud, rep.PeerImageID); !bytes.Equal(got, data) {
			t.Fatal("the new copy's bytes differ")
		}
	})
	t.Run("a fresh stager adopts a copy it did not record", func(t *testing.T) {
		before := src.downloads.Load()
		fresh := staging.New(registry.NewMemory(), "broker-2", quiet())
		if _, err := fresh.Ensure(ctx, img, srcM, dstM); err != nil {
			t.Fatal(err)
		}
		if n := src.downloads.Load() - before; n != 0 {
			t.Fatalf("%d downloads: the copy on the peer was not adopted", n)
		}
	})
	t.Run("metrics count the two copies and their bytes", func(t *testing.T) {
		want := map[string]float64{
			`cloudmux_staging_copies_total{result="copied"}`:       2,
			`cloudmux_staging_bytes_total`:                         float64(2 * len(data)),
			`cloudmux_staging_copy_seconds_count{outcome="ok"}`:    2,
			`cloudmux_staging_copies_total{result="error"}`:        0,
			`cloudmux_staging_copy_seconds_count{outcome="error"}`: 0,
		}
		got := metricstest.Values(t, reg)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})
}

// TestEnsureCorruptSourceLeavesNothing: bytes that do not match the
// source's checksum never become an active copy.
func TestEnsureCorruptSourceLeavesNothing(t *testing.T) {
	ctx := context.Background()
	srcCloud, dstCloud := newCloud(t, "src"), newCloud(t, "dst")
	src := &countingSource{Cloud: srcCloud}
	src.corrupt.Store(true)
	img := uploadImage(t, srcCloud, randomBytes(t, 1<<20))
	s := staging.New(registry.NewMemory(), "b", quiet())
	reg := prometheus.NewRegistry()
	s.Metrics = staging.NewMetrics(reg)
	srcM := &peers.Member{Peer: registry.Peer{ID: "s", Name: "src"}, Cloud: src}
	dstM := &peers.Member{Peer: registry.Peer{ID: "d", Name: "dst"}, Cloud: dstCloud}
	if _, err := s.Ensure(ctx, img, srcM, dstM); err == nil {
		t.Fatal("a corrupted copy was accepted")
	}
	left, err := dstCloud.ListImages(ctx, peers.ListOptions{Metadata: map[string]string{staging.MetaReplicaOf: img.ID}})
	if err != nil || len(left) != 0 {
		t.Fatalf("images left on the target: %v, %v", left, err)
	}
	if reps, _ := s.Replicas(ctx, img.ID); len(reps) != 0 {
		t.Fatalf("a failed copy was recorded: %v", reps)
	}
	src.corrupt.Store(false)
	if _, err := s.Ensure(ctx, img, srcM, dstM); err != nil {
		t.Fatalf("staging after the source healed: %v", err)
	}
	if got := metricstest.Values(t, reg); got[`cloudmux_staging_copies_total{result="error"}`] != 1 || got[`cloudmux_staging_copies_total{result="copied"}`] != 1 {
		t.Fatalf("the failed copy and the healed one: %v", got)
	}
}

// TestEnsureConcurrentOneCopy: many boots of one image on one peer, from
// two brokers sharing a store, make one copy.
func TestEnsureConcurrentOneCopy(t *testing.T) {
	ctx := context.Background()
	srcCloud, dstCloud := newCloud(t, "src"), newCloud(t, "dst")
	src := &countingSource{Cloud: srcCloud, gate: make(chan struct{})}
	img := uploadImage(t, srcCloud, randomBytes(t, 1<<20))
	store := registry.NewMemory()
	brokers := []*staging.Stager{staging.New(store, "b1", quiet()), staging.New(store, "b2", quiet())}
	srcM := &peers.Member{Peer: registry.Peer{ID: "s", Name: "src"}, Cloud: src}
	dstM := &peers.Member{Peer: registry.Peer{ID: "d", Name: "dst"}, Cloud: dstCloud}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := brokers[i%2].Ensure(ctx, img, srcM, dstM)
			if err == nil && rep.PeerImageID == "" {
				err = errors.New("empty replica")
			}
			errs <- err
		}()
	}
	close(src.gate) // every caller is in or queued before the first byte moves
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := src.downloads.Load(); n != 1 {
		t.Fatalf("%d copies made, want 1", n)
	}
}

// BenchmarkStage copies a 64 MiB image between two local clouds through
// the stager.
func BenchmarkStage(b *testing.B) {
	ctx := context.Background()
	srcCloud := newCloud(b, "src")
	data := randomBytes(b, 64<<20)
	img := uploadImage(b, srcCloud, data)
	srcM := &peers.Member{Peer: registry.Peer{ID: "s", Name: "src"}, Cloud: srcCloud}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dstM := &peers.Member{Peer: registry.Peer{ID: "d", Name: "dst"}, Cloud: newCloud(b, "dst")}
		s := staging.New(registry.NewMemory(), "b", quiet())
		b.StartTimer()
		if _, err := s.Ensure(ctx, img, srcM, dstM); err != nil {
			b.Fatal(err)
		}
	}
}
