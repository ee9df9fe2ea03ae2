package openstack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"

	"github.com/cloudmux/cloudmux/peers"
)

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "osdrv-" + hex.EncodeToString(b)
}

// TestNeutronMetadata: metadata with Neutron's separators survives the
// round trip through real Neutron, the tags are the documented
// KEY=VALUE form operators can search, and a list filters on it.
func TestNeutronMetadata(t *testing.T) {
	c := connect(t, "")
	id := randomID()
	meta := map[string]string{peers.MetaID: id, peers.MetaProject: "broker-project", "odd=key": "a,b%c d"}
	net, err := c.CreateNetwork(t.Context(), peers.NetworkSpec{Name: id, Metadata: meta})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteNetwork(context.Background(), net.ID) })
	got, err := c.GetNetwork(t.Context(), net.ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		if got.Metadata[k] != v {
			t.Fatalf("GetNetwork metadata = %v, want %v", got.Metadata, meta)
		}
	}
	pc := gopherClient(t, entryConfig(t, cloudsYAML(t), cloudEntry()))
	nc, err := gopenstack.NewNetworkV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := attributestags.List(t.Context(), nc, "networks", net.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cloudmux_id=" + id, "odd%3Dkey=a%2Cb%25c d"} {
		if !slices.Contains(tags, want) {
			t.Fatalf("Neutron tags %q lack %q", tags, want)
		}
	}
	l, err := c.ListNetworks(t.Context(), peers.ListOptions{Metadata: map[string]string{"odd=key": "a,b%c d", peers.MetaID: id}})
	if err != nil || len(l) != 1 || l[0].ID != net.ID {
		t.Fatalf("ListNetworks by odd metadata = %v, %v; want the network", l, err)
	}
}

// TestImageUploadRefusals: data that is not the declared size never
// makes a Glance image active; the image stays queued for another try.
func TestImageUploadRefusals(t *testing.T) {
	c := connect(t, "")
	payload := bytes.Repeat([]byte("cloudmux"), 32<<10) // 256 KiB
	tests := []struct {
		name string
		size int64
	}{
		{"shorter than declared", int64(len(payload)) + 1},
		{"longer than declared", int64(len(payload)) - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: randomID(), DiskFormat: "raw", ContainerFormat: "bare"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.DeleteImage(context.Background(), img.ID) })
			err = c.UploadImage(t.Context(), img.ID, bytes.NewReader(payload), tc.size)
			if !errors.Is(err, peers.ErrInvalid) {
				t.Fatalf("UploadImage of %d bytes declared %d: %v, want ErrInvalid", len(payload), tc.size, err)
			}
			// Never active; queued once Glance has finished with the cut-off
			// request (it shows saving until it notices). Then the same
			// image takes a correct upload; until Glance is done it may
			// answer 409 (saving) or 410 (its cleanup raced the new upload).
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			queued := false
			for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
				got, err := c.GetImage(ctx, img.ID)
				if err != nil || got.Status == peers.ImageActive || got.Status == peers.ImageKilled {
					t.Fatalf("after the refused upload the image is %s, %v; want saving then queued", got.Status, err)
				}
				if queued = queued || got.Status == peers.ImageQueued; queued {
					err := c.UploadImage(ctx, img.ID, bytes.NewReader(payload), int64(len(payload)))
					if err == nil {
						break
					}
					if !errors.Is(err, peers.ErrConflict) && !errors.Is(err, peers.ErrNotFound) {
						t.Fatalf("UploadImage after the refusal: %v", err)
					}
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the refused image never took a good upload: %v", ctx.Err())
				case <-time.After(delay):
				}
			}
			if got, err := c.GetImage(t.Context(), img.ID); err != nil || got.Status != peers.ImageActive || got.Size != int64(len(payload)) {
				t.Fatalf("after the good upload: %+v, %v; want active with %d bytes", got, err, len(payload))
			}
		})
	}
}

// BenchmarkAddedLatency compares one flavor show through gophercloud
// directly with the same call through the driver (translation, retry hook,
// deadline): the difference is the driver's own cost.
func BenchmarkAddedLatency(b *testing.B) {
	c := connect(b, "")
	pc := gopherClient(b, entryConfig(b, cloudsYAML(b), cloudEntry()))
	compute, err := gopenstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		b.Fatal(err)
	}
	compute.Microversion = c.ComputeMicroversion()
	ctx := context.Background()
	b.Run("gophercloud", func(b *testing.B) {
		for b.Loop() {
			if _, err := flavors.Get(ctx, compute, testFlavor).Extract(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("driver", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.GetFlavor(ctx, testFlavor); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkImageData measures streaming 64 MiB into Glance (with the
// driver's size and MD5 checks) and back out (with its Content-MD5 check).
func BenchmarkImageData(b *testing.B) {
	c := connect(b, "")
	const size = 64 << 20
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	ctx := context.Background()
	newImage := func(b *testing.B) string {
		img, err := c.CreateImage(ctx, peers.ImageSpec{Name: randomID(), DiskFormat: "raw", ContainerFormat: "bare"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.DeleteImage(context.Background(), img.ID) })
		return img.ID
	}
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			id := newImage(b)
			b.StartTimer()
			if err := c.UploadImage(ctx, id, bytes.NewReader(payload), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("download", func(b *testing.B) {
		id := newImage(b)
		if err := c.UploadImage(ctx, id, bytes.NewReader(payload), size); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for b.Loop() {
			rc, err := c.DownloadImage(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			_ = rc.Close()
			if err != nil || n != size {
				b.Fatalf("downloaded %d bytes, %v", n, err)
			}
		}
	})
}
