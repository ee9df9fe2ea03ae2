package localcloud_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/benchio"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

func benchCloud(b *testing.B, cfg localcloud.Config) *localcloud.Cloud {
	b.Helper()
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func benchConfig(b *testing.B) localcloud.Config {
	cfg := localcloud.DevDefaults(b.TempDir())
	cfg.Hosts = []localcloud.HostConfig{{Name: "host-a", URI: "fake://a", VCPUs: 16, RAMMiB: 32768, DiskGiB: 500}}
	return cfg
}

// percentile returns the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[min(int(float64(len(ds))*p), len(ds)-1)]
}

// BenchmarkObjectList100k pages through a container of 100,000 objects
// (100 pseudo-directories of 1,000): a page of 1,000 from a random
// marker, the same within one directory by prefix and delimiter, and the
// 100 directories rolled up. It reports each page's p50 and p99, and how
// long a restart takes to rebuild the index from disk (load-ms).
func BenchmarkObjectList100k(b *testing.B) {
	const n, dirs = 100_000, 100
	localcloud.SetObjectSync(b, false) // filling is not what is measured
	cfg := benchConfig(b)
	c := benchCloud(b, cfg)
	ctx := context.Background()
	if err := c.CreateContainer(ctx, "big"); err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("dir%02d/object-%06d.bin", i%dirs, i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := c.PutObject(ctx, "big", names[i], strings.NewReader(""), peers.ObjectSpec{Size: 0}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	c = benchCloud(b, cfg)
	load := time.Since(start)
	slices.Sort(names)

	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		opts func() peers.ObjectListOptions
		want int
	}{
		{"page", func() peers.ObjectListOptions {
			return peers.ObjectListOptions{Marker: names[r.IntN(n-1000)], Limit: 1000}
		}, 1000},
		{"dir-page", func() peers.ObjectListOptions {
			d := fmt.Sprintf("dir%02d/", r.IntN(dirs))
			return peers.ObjectListOptions{Prefix: d, Delimiter: "/", Marker: d + "object-", Limit: 1000}
		}, 1000},
		{"subdirs", func() peers.ObjectListOptions {
			return peers.ObjectListOptions{Delimiter: "/", Limit: 1000}
		}, dirs},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				opts := tc.opts()
				start := time.Now()
				page, err := c.ListObjects(ctx, "big", opts)
				ds = append(ds, time.Since(start))
				if err != nil || len(page) != tc.want {
					b.Fatalf("ListObjects %+v: %d entries, %v; want %d", opts, len(page), err, tc.want)
				}
			}
			b.ReportMetric(float64(percentile(ds, 0.5).Microseconds()), "p50_us")
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds()), "p99_us")
			b.ReportMetric(float64(load.Milliseconds()), "load-ms")
		})
	}
}

// BenchmarkObjectPutGet stores and reads back a 256 MiB object, and
// writes (with fsync) and reads the same bytes in a plain file on the same
// filesystem, reporting each rate in MB/s and the object store's as a
// fraction of the plain file's (issue 17 asks >= 0.8 through the broker).
func BenchmarkObjectPutGet(b *testing.B) {
	const size = 256 << 20
	cfg := benchConfig(b)
	c := benchCloud(b, cfg)
	ctx := context.Background()
	if err := c.CreateContainer(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	block := benchio.Block(1<<20+7, 3) // not aligned, so chunks differ
	direct := filepath.Join(cfg.DataDir, "direct.bin")
	var put, get, write, read time.Duration
	for b.Loop() {
		w, r, err := benchio.Direct(direct, block, size)
		if err != nil {
			b.Fatal(err)
		}
		write, read = write+w, read+r
		// Gone before the PUT, so the PUT's pages come from the same
		// memory (see BenchmarkSwiftPutGet1GiB in broker/swift).
		b.StopTimer()
		_ = os.Remove(direct)
		b.StartTimer()

		start := time.Now()
		info, err := c.PutObject(ctx, "bench", "big", benchio.NewPattern(block, size), peers.ObjectSpec{Size: size})
		if err != nil || info.Size != size {
			b.Fatalf("PutObject: %+v, %v", info, err)
		}
		put += time.Since(start)

		start = time.Now()
		_, rc, err := c.GetObject(ctx, "bench", "big", nil)
		if err != nil {
			b.Fatal(err)
		}
		if got, err := benchio.Drain(rc); err != nil || got != size {
			b.Fatalf("GetObject read %d bytes: %v", got, err)
		}
		_ = rc.Close()
		get += time.Since(start)

		b.StopTimer()
		if err := c.DeleteObject(ctx, "bench", "big"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	benchio.ReportRates(b, size, put, get, write, read)
}
