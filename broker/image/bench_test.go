package image_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

const benchImageSize = 256 << 20

// pattern streams n bytes of a repeating random block: image data that is
// never held in memory whole.
type pattern struct {
	block []byte
	off   int
	left  int64
}

func newPattern(n int64) *pattern { return &pattern{block: randomBytes(64<<10, 9), left: n} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off:])
		n += c
		p.off = (p.off + c) % len(p.block)
	}
	p.left -= int64(n)
	return n, nil
}

// memWatch samples the heap while a transfer runs and reads the process's
// peak RSS (VmHWM, reset first where the kernel allows), so a benchmark
// can show the bytes stream through rather than pile up.
type memWatch struct {
	stop, done chan struct{}
	heapBase   uint64
	heapPeak   uint64
	rssBase    int64
}

func watchMemory() *memWatch {
	runtime.GC()
	w := &memWatch{stop: make(chan struct{}), done: make(chan struct{})}
	w.rssBase = procStatus("VmRSS")
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM to the current RSS
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	w.heapBase = sample[0].Value.Uint64()
	w.heapPeak = w.heapBase
	go func() {
		defer close(w.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			w.heapPeak = max(w.heapPeak, sample[0].Value.Uint64())
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// report stops sampling and reports heap and RSS growth in MiB.
func (w *memWatch) report(b *testing.B) {
	close(w.stop)
	<-w.done
	b.ReportMetric(float64(w.heapPeak-w.heapBase)/(1<<20), "peak-heap-growth-MiB")
	if hwm := procStatus("VmHWM"); hwm > 0 && w.rssBase > 0 {
		b.ReportMetric(float64(hwm-w.rssBase)/(1<<20), "peak-rss-growth-MiB")
	}
}

// procStatus reads a "kB" field of /proc/self/status in bytes (0 if absent).
func procStatus(field string) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// BenchmarkImageTransfer moves a 256 MiB image through the broker's Glance
// API (client -> broker -> local cloud's image store on disk, and back)
// and, for comparison, straight into the local cloud. MB/s is the
// throughput; peak-heap-growth-MiB and peak-rss-growth-MiB staying a few
// MiB for 256 MiB moved shows the broker streams without buffering.
func BenchmarkImageTransfer(b *testing.B) {
	te := newEnv(b, envOpts{}, "alpha")
	admin := te.admin(b)
	sum := md5.New()
	if _, err := io.Copy(sum, newPattern(benchImageSize)); err != nil {
		b.Fatal(err)
	}
	want := hex.EncodeToString(sum.Sum(nil))
	create := func(b *testing.B, name string) string {
		img, err := images.Create(te.Ctx, admin, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			b.Fatal(err)
		}
		return img.ID
	}
	upload := func(b *testing.B, id string) {
		req, err := http.NewRequest(http.MethodPut, admin.ResourceBaseURL()+"images/"+id+"/file", newPattern(benchImageSize))
		if err != nil {
			b.Fatal(err)
		}
		req.ContentLength = benchImageSize
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Auth-Token", admin.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("upload = %d", resp.StatusCode)
		}
	}

	b.Run("upload-through-broker", func(b *testing.B) {
		b.SetBytes(benchImageSize)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			id := create(b, fmt.Sprintf("up-%d", i))
			w := watchMemory()
			b.StartTimer()
			upload(b, id)
			b.StopTimer()
			w.report(b)
			if err := images.Delete(te.Ctx, admin, id).ExtractErr(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("download-through-broker", func(b *testing.B) {
		b.StopTimer()
		id := create(b, "down")
		upload(b, id)
		b.SetBytes(benchImageSize)
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest(http.MethodGet, admin.ResourceBaseURL()+"images/"+id+"/file", nil)
			req.Header.Set("X-Auth-Token", admin.Token())
			w := watchMemory()
			b.StartTimer()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			b.StopTimer()
			w.report(b)
			if err != nil || n != benchImageSize || resp.Header.Get("Content-MD5") != want {
				b.Fatalf("download: %d bytes, %v, Content-MD5 %q want %q", n, err, resp.Header.Get("Content-MD5"), want)
			}
		}
	})

	b.Run("upload-direct-to-peer", func(b *testing.B) {
		b.SetBytes(benchImageSize)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			id := create(b, fmt.Sprintf("direct-%d", i))
			w := watchMemory()
			b.StartTimer()
			if err := te.cloud("alpha").UploadImage(te.Ctx, id, newPattern(benchImageSize), benchImageSize); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			w.report(b)
			if err := images.Delete(te.Ctx, admin, id).ExtractErr(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
