// Package benchio holds what the data-path benchmarks share: objects and
// images of any size that never exist whole in memory, the same bytes
// written (with fsync) and read in a plain file as the yardstick a
// store's rate is compared with, and the process's peak RSS over a
// transfer. The image benchmarks (localcloud, broker/image) still carry their
// own pattern readers; new ones use this.
package benchio

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CopyBuffer is the copy size of the yardstick, the object store's own.
const CopyBuffer = 256 << 10

// Block returns n pseudo-random bytes from seed: the unit a Pattern
// repeats (make n odd-sized so chunks do not align with it).
func Block(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Pattern yields N bytes cycling through Block.
type Pattern struct {
	Block []byte
	N     int64
	off   int
}

// NewPattern returns n bytes of block repeated.
func NewPattern(block []byte, n int64) *Pattern { return &Pattern{Block: block, N: n} }

func (p *Pattern) Read(b []byte) (int, error) {
	if p.N <= 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.N)]
	k := 0
	for k < len(b) {
		c := copy(b[k:], p.Block[p.off:])
		k += c
		p.off = (p.off + c) % len(p.Block)
	}
	p.N -= int64(k)
	return k, nil
}

// Drain reads r to its end through a CopyBuffer-sized buffer and returns
// the bytes read.
func Drain(r io.Reader) (int64, error) {
	return io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, CopyBuffer))
}

// Direct writes size bytes of block to a new file at path, fsyncs it,
// then reads it back, and returns how long each took: what a store
// writing and reading the same bytes on the same filesystem is measured
// against. The file is left for the caller to remove.
func Direct(path string, block []byte, size int64) (write, read time.Duration, err error) {
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.CopyBuffer(struct{ io.Writer }{f}, NewPattern(block, size), make([]byte, CopyBuffer))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	write = time.Since(start)

	start = time.Now()
	f, err = os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	n, err := Drain(f)
	if err == nil && n != size {
		err = fmt.Errorf("read %d bytes of %d", n, size)
	}
	return write, time.Since(start), err
}

// CPU returns the process's CPU time so far, user and system, every
// thread's: what a transfer costs the machine, which, unlike its rate,
// other work on the machine does not change much.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// VmRSSKiB reads VmRSS of /proc/self/status, in KiB (0 where there is no
// /proc).
func VmRSSKiB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err == nil {
				return kib
			}
		}
	}
	return 0
}

// PeakRSS samples the process's VmRSS every 10 ms until the returned
// stop is called, which returns the highest sample in KiB. (VmHWM would
// need resetting through clear_refs, which not every kernel allows.)
func PeakRSS() (stop func() int64) {
	done, peak := make(chan struct{}), make(chan int64)
	go func() {
		top := VmRSSKiB()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				top = max(top, VmRSSKiB())
			case <-done:
				peak <- max(top, VmRSSKiB())
				return
			}
		}
	}()
	return func() int64 { close(done); return <-peak }
}

// Parallel calls f(i) for every i in [0, n) on workers goroutines (a
// benchmark's setup: filling a store) and returns the first error, after
// which the workers stop taking more.
func Parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		stop  = make(chan struct{})
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				select {
				case <-stop:
					return
				default:
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; close(stop) })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// ReportRates reports a store's PUT and GET of size bytes per iteration
// against Direct's write and read of the same bytes: each in MB/s, and
// the store's as a fraction of the plain file's (issue 17 asks >= 0.8).
func ReportRates(b *testing.B, size int64, put, get, write, read time.Duration) {
	mbps := func(d time.Duration) float64 { return float64(size*int64(b.N)) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(put), "put-MB/s")
	b.ReportMetric(mbps(get), "get-MB/s")
	b.ReportMetric(mbps(write), "direct-write-MB/s")
	b.ReportMetric(mbps(read), "direct-read-MB/s")
	b.ReportMetric(write.Seconds()/put.Seconds(), "put/direct")
	b.ReportMetric(read.Seconds()/get.Seconds(), "get/direct")
}

// Loopback sends the file at path over a plain TCP connection on
// 127.0.0.1 (the kernel's sendfile, as any HTTP server serving a file
// does) and reads it through a CopyBuffer-sized buffer, and returns how
// long that took: the floor a GET over loopback HTTP cannot go below,
// beside Direct's read, which crosses no socket.
func Loopback(path string) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	sent := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer conn.Close()
		f, err := os.Open(path)
		if err != nil {
			sent <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(conn, f)
		sent <- err
	}()
	start := time.Now()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := Drain(conn); err != nil {
		return 0, err
	}
	took := time.Since(start)
	return took, <-sent
}
