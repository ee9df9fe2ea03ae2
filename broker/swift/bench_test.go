package swift_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/broker/swift"
	"github.com/cloudmux/cloudmux/internal/benchio"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// benchBroker is a broker serving Swift over real HTTP on loopback, with
// one fake-driver local cloud ("p1") whose object store is a directory
// under the benchmark's TempDir, and the admin's token and account path.
type benchBroker struct {
	*brokertest.Env
	svc            *object.Service
	token, project string
	account        string
}

func newBenchBroker(b *testing.B) *benchBroker {
	b.Helper()
	bb := &benchBroker{}
	bb.Env = brokertest.New(b, []brokertest.Peer{{Name: "p1"}}, func(be *brokertest.Env, r chi.Router) {
		bb.svc = &object.Service{Pool: be.Pool, Placer: policy.Default{}, Store: be.Store, Log: be.Log,
			Containers: object.NewContainersMemory(be.Store, be.Log), Accounts: object.NewAccountsMemory(be.Store, be.Log)}
		api := &swift.API{Objects: bb.svc, Tokens: be.Keystone.Tokens, Log: be.Log}
		r.Route("/swift", api.Routes)
	})
	bb.Start(b, bb.svc.Containers, bb.svc.Accounts)
	p, err := bb.Dir.FindProject(bb.Ctx, identity.DefaultDomainID, "admin")
	if err != nil {
		b.Fatal(err)
	}
	bb.project, bb.account = p.ID, "/swift/v1/AUTH_"+p.ID
	bb.token = bb.Provider(b, "admin", brokertest.AdminPassword, "admin").Token()
	return bb
}

// send makes one request with the admin's token and fails the benchmark
// unless the status is want; the caller closes the body.
func (bb *benchBroker) send(b *testing.B, want int, method, path string, body io.Reader, size int64) *http.Response {
	b.Helper()
	return bb.sendWith(b, want, method, path, body, size, nil)
}

// sendWith is send with more request headers.
func (bb *benchBroker) sendWith(b *testing.B, want int, method, path string, body io.Reader, size int64, h http.Header) *http.Response {
	b.Helper()
	req, err := http.NewRequestWithContext(bb.Ctx, method, bb.Server.URL+path, body)
	if err != nil {
		b.Fatal(err)
	}
	maps.Copy(req.Header, h)
	req.ContentLength = size
	req.Header.Set("X-Auth-Token", bb.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != want {
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		b.Fatalf("%s %s = %d %q; want %d", method, path, resp.StatusCode, raw, want)
	}
	return resp
}

// BenchmarkSwiftPutGet1GiB PUTs and GETs a 1 GiB object through the
// broker's Swift API over real HTTP (the client, the broker and the local
// cloud in this process, on loopback), and writes and reads the same
// bytes in a plain file on the same filesystem in the same run:
//
//   - PUT: the client streams the bytes with their Content-Length and
//     ETag (their MD5, taken once before the loop); the broker checks the
//     token and the quotas and streams the body to the local cloud, which
//     writes it to a new data file while taking its MD5 (checked against
//     the ETag) and CRC-32C, fsyncs the file and its directory, then
//     writes, fsyncs and renames the object's record into place and
//     fsyncs that directory (a crash leaves the old object or the new).
//   - the plain write: the same bytes written through a 256 KiB buffer
//     to a new file, fsynced and closed: the same bytes made durable, and
//     nothing else (no hash, no record).
//   - GET: the local cloud checks each 4 MiB chunk's CRC-32C (the whole
//     object's before its last chunk goes) and hands the chunk to the
//     socket by sendfile; the client reads it through a 256 KiB buffer.
//   - the plain read: the file read back through a 256 KiB buffer, from
//     the page cache as the GET's bytes are (both were just written).
//
// It reports each rate in MB/s, the API's as a fraction of the plain
// file's (issue 17 asks >= 0.8); the same file sent over a bare loopback
// TCP connection by sendfile (benchio.Loopback: what any HTTP GET on
// loopback pays, the socket's copy into the client) and the GET as a
// fraction of that (get/loopback); the process's CPU seconds (every
// thread: client and broker) per PUT, GET and plain write+read, which
// other work on a shared machine changes far less than the rates; and the
// process's peak VmRSS growth over the PUT and GET (rss-growth-MiB, issue
// 17 asks < 64; it holds the client's buffers too, so it bounds the
// broker's) and the growth of the Go heap in use (heap-growth-MiB), both
// against the state before them.
func BenchmarkSwiftPutGet1GiB(b *testing.B) {
	const size = 1 << 30
	bb := newBenchBroker(b)
	bb.send(b, http.StatusCreated, http.MethodPut, bb.account+"/bench", nil, 0).Body.Close()
	block := benchio.Block(1<<20+7, 5) // not aligned, so chunks differ
	direct := filepath.Join(b.TempDir(), "direct.bin")
	sum := md5.New()
	if _, err := io.Copy(sum, benchio.NewPattern(block, size)); err != nil {
		b.Fatal(err)
	}
	etag := http.Header{"Etag": {hex.EncodeToString(sum.Sum(nil))}}
	var put, get, write, read, loop time.Duration
	var putCPU, getCPU, directCPU time.Duration
	var rssGrowth, heapGrowth int64
	for b.Loop() {
		cpu := benchio.CPU()
		w, r, err := benchio.Direct(direct, block, size)
		if err != nil {
			b.Fatal(err)
		}
		directCPU += benchio.CPU() - cpu
		write, read = write+w, read+r
		l, err := benchio.Loopback(direct)
		if err != nil {
			b.Fatal(err)
		}
		loop += l

		b.StopTimer()
		// The plain file goes before the PUT, so its gigabyte is no longer
		// held in the page cache: else the PUT's pages must come from
		// memory the plain file's write did not need. On this benchmark's
		// virtual machine that is memory the host has not yet backed (or
		// took back), where every first touch of a page is a fault in the
		// host: with the file kept, the kernel's copy into the page cache
		// cost the PUT 4-5 times as much CPU as the same copy cost the
		// plain file's write (perf), and the comparison was unequal.
		_ = os.Remove(direct)
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapBefore, rssBefore := ms.HeapInuse, benchio.VmRSSKiB()
		stop := benchio.PeakRSS()
		b.StartTimer()

		start, cpu := time.Now(), benchio.CPU()
		bb.sendWith(b, http.StatusCreated, http.MethodPut, bb.account+"/bench/big", benchio.NewPattern(block, size), size, etag).Body.Close()
		put += time.Since(start)
		putCPU += benchio.CPU() - cpu

		start, cpu = time.Now(), benchio.CPU()
		resp := bb.send(b, http.StatusOK, http.MethodGet, bb.account+"/bench/big", nil, 0)
		if got, err := benchio.Drain(resp.Body); err != nil || got != size {
			b.Fatalf("GET read %d bytes: %v", got, err)
		}
		_ = resp.Body.Close()
		get += time.Since(start)
		getCPU += benchio.CPU() - cpu

		b.StopTimer()
		rssGrowth = max(rssGrowth, stop()-rssBefore)
		runtime.ReadMemStats(&ms)
		heapGrowth = max(heapGrowth, int64(ms.HeapInuse)-int64(heapBefore))
		bb.send(b, http.StatusNoContent, http.MethodDelete, bb.account+"/bench/big", nil, 0).Body.Close()
		b.StartTimer()
	}
	benchio.ReportRates(b, size, put, get, write, read)
	b.ReportMetric(float64(size*int64(b.N))/1e6/loop.Seconds(), "loopback-MB/s")
	b.ReportMetric(loop.Seconds()/get.Seconds(), "get/loopback")
	perOp := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(perOp(putCPU), "put-cpu-s")
	b.ReportMetric(perOp(getCPU), "get-cpu-s")
	b.ReportMetric(perOp(directCPU), "direct-cpu-s")
	b.ReportMetric(float64(rssGrowth)/1024, "rss-growth-MiB")
	b.ReportMetric(float64(heapGrowth)/(1<<20), "heap-growth-MiB")
}

// BenchmarkSwiftList100k lists a page (limit 1000, from a random marker)
// of a 100,000-object container through the Swift API over real HTTP, in
// json, and reports its p50 and p99. The container is filled through its
// peer directly (HTTP would only slow the setup), on tmpfs where
// /dev/shm is one: the fill's fsyncs are not what is measured, and the
// local cloud lists from its in-memory index either way.
func BenchmarkSwiftList100k(b *testing.B) {
	const n = 100_000
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		b.Setenv("TMPDIR", "/dev/shm")
	}
	bb := newBenchBroker(b)
	bb.send(b, http.StatusCreated, http.MethodPut, bb.account+"/big", nil, 0).Body.Close()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("dir%02d/object-%06d.bin", i%100, i)
	}
	id, peerContainer, err := bb.svc.PeerOf(bb.Ctx, bb.project, "big")
	if err != nil {
		b.Fatal(err)
	}
	m, _ := bb.Pool.Get(id)
	objects, ok := m.Cloud.(peers.Objects)
	if !ok {
		b.Fatalf("peer %s stores no objects", id)
	}
	fill := time.Now()
	err = benchio.Parallel(n, 8, func(i int) error {
		_, err := objects.PutObject(bb.Ctx, peerContainer, names[i], strings.NewReader(""), peers.ObjectSpec{Size: 0})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	filled := time.Since(fill)
	slices.Sort(names)

	r := rand.New(rand.NewPCG(7, 8))
	var ds []time.Duration
	for b.Loop() {
		marker := names[r.IntN(n-1000)]
		start := time.Now()
		resp := bb.send(b, http.StatusOK, http.MethodGet, bb.account+"/big?format=json&limit=1000&marker="+marker, nil, 0)
		raw, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if got := strings.Count(string(raw), `"name"`); got != 1000 {
			b.Fatalf("a page from %s holds %d objects; want 1000", marker, got)
		}
	}
	slices.Sort(ds)
	at := func(p float64) float64 { return float64(ds[min(int(float64(len(ds))*p), len(ds)-1)].Microseconds()) }
	b.ReportMetric(at(0.5), "p50_us")
	b.ReportMetric(at(0.99), "p99_us")
	b.ReportMetric(float64(filled.Milliseconds()), "fill-ms")
}
