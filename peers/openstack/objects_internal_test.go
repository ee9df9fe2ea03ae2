package openstack

import (
	"net/http"
	"strings"
	"testing"
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
