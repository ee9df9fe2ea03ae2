package openstack

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // as the driver's
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetaKeyEncoding: a key survives what Swift's WSGI stack does to a
// header name (upper-cased, '_' read as '-', title-cased back) and Go's
// canonical form.
func TestMetaKeyEncoding(t *testing.T) {
	tests := []struct {
		name, key, wire string
	}{
		{"plain", "color", "color"},
		{"dash", "x-y", "x-y"},
		{"underscore", "foo_bar", "foo%5Fbar"},
		{"dot", "a.b", "a%2Eb"},
		{"percent", "100%", "100%25"},
		{"unicode", "日本", "%E6%97%A5%E6%9C%AC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := encodeMetaKey(tc.key)
			if wire != tc.wire {
				t.Fatalf("encodeMetaKey(%q) = %q, want %q", tc.key, wire, tc.wire)
			}
			for _, back := range []string{wire, strings.ToUpper(wire), http.CanonicalHeaderKey(metaPrefix + wire)[len(metaPrefix):]} {
				if got := decodeMetaKey(back); got != tc.key {
					t.Fatalf("decodeMetaKey(%q) = %q, want %q", back, got, tc.key)
				}
			}
		})
	}
}

// cancelMidway cancels a context once n bytes have been read, and goes on
// giving bytes, as a source does that knows nothing of the context.
type cancelMidway struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelMidway) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}

// TestUploadBodyStopsAtCancel: once the upload's context is done, the body
// hands over no more bytes (those of the read that saw it end included),
// so the transport cannot finish sending a cancelled upload before it
// notices, and the service never gets a whole body to commit.
func TestUploadBodyStopsAtCancel(t *testing.T) {
	const size, cut = 4 << 20, 1 << 20
	for _, known := range []int64{size, -1} {
		t.Run(fmt.Sprintf("size %d", known), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			body := &uploadBody{what: "the object data", ctx: ctx, r: &cancelMidway{r: bytes.NewReader(make([]byte, size)), n: cut, cancel: cancel},
				size: known, h: md5.New()} //nolint:gosec // as the driver's
			n, err := io.Copy(io.Discard, body)
			if !errors.Is(err, context.Canceled) || n >= cut {
				t.Fatalf("copying a body whose context ends after %d bytes: %d bytes, %v; want fewer and context.Canceled", cut, n, err)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"none", time.Time{}, false},
		{"an hour ago", now.Add(-time.Hour), true},
		{"this second", time.Unix(now.Unix(), 999_999_999), true},
		{"in an hour", now.Add(time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := expired(tc.at); got != tc.want {
				t.Fatalf("expired(%v) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}
