package swift_test

import (
	"fmt"
	"io"
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
	req, err := http.NewRequestWithContext(bb.Ctx, method, bb.Server.URL+path, body)
	if err != nil {
		b.Fatal(err)
	}
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
// cloud in this process, on loopback), and writes (with fsync) and reads
// the same bytes in a plain file on the same filesystem in the same run.
// It reports each rate in MB/s, the API's as a fraction of the plain
// file's (issue 17 asks >= 0.8); the same file sent over a bare loopback
// TCP connection by sendfile (benchio.Loopback: what any HTTP GET on
// loopback pays, the socket's copy into the client) and the GET as a
// fraction of that (get/loopback); and the process's peak VmRSS growth over
// the PUT and GET (rss-growth-MiB, issue 17 asks < 64; it holds the
// client's buffers too, so it bounds the broker's) and the growth of the
// Go heap in use (heap-growth-MiB), both against the state before them.
func BenchmarkSwiftPutGet1GiB(b *testing.B) {
	const size = 1 << 30
	bb := newBenchBroker(b)
	bb.send(b, http.StatusCreated, http.MethodPut, bb.account+"/bench", nil, 0).Body.Close()
	block := benchio.Block(1<<20+7, 5) // not aligned, so chunks differ
	direct := filepath.Join(b.TempDir(), "direct.bin")
	var put, get, write, read, loop time.Duration
	var rssGrowth, heapGrowth int64
	for b.Loop() {
		w, r, err := benchio.Direct(direct, block, size)
		if err != nil {
			b.Fatal(err)
		}
		write, read = write+w, read+r
		l, err := benchio.Loopback(direct)
		if err != nil {
			b.Fatal(err)
		}
		loop += l

		b.StopTimer()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapBefore, rssBefore := ms.HeapInuse, benchio.VmRSSKiB()
		stop := benchio.PeakRSS()
		b.StartTimer()

		start := time.Now()
		bb.send(b, http.StatusCreated, http.MethodPut, bb.account+"/bench/big", benchio.NewPattern(block, size), size).Body.Close()
		put += time.Since(start)

		start = time.Now()
		resp := bb.send(b, http.StatusOK, http.MethodGet, bb.account+"/bench/big", nil, 0)
		if got, err := benchio.Drain(resp.Body); err != nil || got != size {
			b.Fatalf("GET read %d bytes: %v", got, err)
		}
		_ = resp.Body.Close()
		get += time.Since(start)

		b.StopTimer()
		rssGrowth = max(rssGrowth, stop()-rssBefore)
		runtime.ReadMemStats(&ms)
		heapGrowth = max(heapGrowth, int64(ms.HeapInuse)-int64(heapBefore))
		_ = os.Remove(direct)
		bb.send(b, http.StatusNoContent, http.MethodDelete, bb.account+"/bench/big", nil, 0).Body.Close()
		b.StartTimer()
	}
	benchio.ReportRates(b, size, put, get, write, read)
	b.ReportMetric(float64(size*int64(b.N))/1e6/loop.Seconds(), "loopback-MB/s")
	b.ReportMetric(loop.Seconds()/get.Seconds(), "get/loopback")
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
