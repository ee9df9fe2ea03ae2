package vswitch

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
)

// BenchmarkSwitch sends frames from one NIC socket to another through the
// switch on 127.0.0.1 and reports what arrives: frames/s and MB/s of
// Ethernet frames, for small and full-size frames, unfiltered and
// through a security-group filter with connection tracking. At most
// window frames are in flight, so the sockets' buffers never overflow:
// the figure is the switch's forwarding rate, not how fast the kernel
// drops.
func BenchmarkSwitch(b *testing.B) {
	for _, bc := range []struct {
		name     string
		size     int
		filtered bool
	}{
		{"64B", 64, false},
		{"1500B", 1500, false},
		{"1500B-filtered", 1500, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Config{}, nil)
			defer s.Close()
			a := attach(b, s, "a", "n1", mac(1), "10.0.0.1")
			r := attach(b, s, "b", "n1", mac(2), "10.0.0.2")
			if bc.filtered {
				for _, id := range []string{"a", "b"} {
					f := localcloud.PortFilter{PortID: id, Accept: []localcloud.FilterRule{
						{In: false, ICMPType: -1, ICMPCode: -1},
						{In: true, Protocol: "udp", PortMin: 5000, PortMax: 5000, Remote: netip.MustParsePrefix("10.0.0.0/24"), ICMPType: -1, ICMPCode: -1},
					}}
					if err := s.SetFilter(f); err != nil {
						b.Fatal(err)
					}
				}
			}
			frame := ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 40000, 5000, 0)
			frame = append(frame, make([]byte, max(0, bc.size-len(frame)))...)
			var got atomic.Int64
			progress := make(chan struct{}, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 65536)
				for {
					_ = r.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					if _, err := r.conn.Read(buf); err != nil {
						return
					}
					n := got.Add(1)
					if n == int64(b.N) {
						return
					}
					if n%16 == 0 {
						select {
						case progress <- struct{}{}:
						default:
						}
					}
				}
			}()
			const window = 64
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			start := time.Now()
			lost := int64(0)
			for i := 0; i < b.N; i++ {
				for int64(i)-got.Load()-lost >= window {
					select {
					case <-progress:
					case <-time.After(time.Second):
						lost = int64(i) - got.Load() // frames were dropped: do not wait for them
					}
				}
				a.send(frame)
			}
			<-done
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "frames/s")
			b.ReportMetric(float64(int64(b.N)-got.Load()), "lost")
		})
	}
}
