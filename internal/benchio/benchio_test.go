package benchio_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cloudmux/cloudmux/internal/benchio"
)

// TestPattern checks a Pattern yields exactly its length, cycling its
// block, whatever the reader's buffer size.
func TestPattern(t *testing.T) {
	block := benchio.Block(7, 1)
	tests := []struct {
		name string
		n    int64
		buf  int
	}{
		{"empty", 0, 4},
		{"shorter than the block", 5, 3},
		{"several blocks, odd buffer", 40, 9},
		{"buffer larger than all", 20, 1 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			if _, err := io.CopyBuffer(&got, struct{ io.Reader }{benchio.NewPattern(block, tc.n)}, make([]byte, tc.buf)); err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat(block, int(tc.n)/len(block)+1)[:tc.n]
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("got %x; want %x", got.Bytes(), want)
			}
		})
	}
}

// TestDirect writes and reads back a file of the pattern's bytes.
func TestDirect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "direct.bin")
	if _, _, err := benchio.Direct(path, benchio.Block(1<<10+3, 2), 1<<20); err != nil {
		t.Fatal(err)
	}
	if got := benchio.VmRSSKiB(); got <= 0 {
		t.Fatalf("VmRSS = %d KiB", got)
	}
	stop := benchio.PeakRSS()
	if got := stop(); got <= 0 {
		t.Fatalf("peak VmRSS = %d KiB", got)
	}
}

// TestParallel checks every index is done once, and the first error
// stops the rest and is returned.
func TestParallel(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		failAt  int // -1: none
		wantErr bool
	}{
		{"all done", 1000, -1, false},
		{"none", 0, -1, false},
		{"an error", 1000, 10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := make([]atomic.Int32, tc.n)
			boom := errors.New("boom")
			err := benchio.Parallel(tc.n, 4, func(i int) error {
				seen[i].Add(1)
				if i == tc.failAt {
					return boom
				}
				return nil
			})
			if tc.wantErr {
				if !errors.Is(err, boom) {
					t.Fatalf("err = %v; want boom", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range seen {
				if got := seen[i].Load(); got != 1 {
					t.Fatalf("index %d done %d times", i, got)
				}
			}
		})
	}
}
