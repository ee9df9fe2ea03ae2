package openstack

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

func TestMetaEncoding(t *testing.T) {
	long := strings.Repeat("v", 200)
	tests := []struct {
		name     string
		meta     map[string]string
		wantDesc bool // the description carries it too
		wantTags []string
	}{
		{"none", nil, false, nil},
		{"plain", map[string]string{peers.MetaID: "abc", peers.MetaProject: "p1"}, true,
			[]string{"cloudmux_id=abc", "cloudmux_project=p1"}},
		{"separators escaped", map[string]string{"a=b": "c,d%e", "ctl": "x\ny"}, true,
			[]string{"a%3Db=c%2Cd%25e", "ctl=x%0Ay"}},
		{"too long for the description", map[string]string{"a": long, "b": long}, false,
			[]string{"a=" + long, "b=" + long}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			desc, tags, err := encodeMeta(tc.meta)
			if err != nil {
				t.Fatal(err)
			}
			if (desc != "") != tc.wantDesc || len(desc) > neutronMaxLen {
				t.Fatalf("description %q (%d chars), want one: %v", desc, len(desc), tc.wantDesc)
			}
			if strings.Join(tags, " ") != strings.Join(tc.wantTags, " ") {
				t.Fatalf("tags %q, want %q", tags, tc.wantTags)
			}
			for what, got := range map[string]map[string]string{
				"both": decodeMeta(desc, tags), "tags only": decodeMeta("", tags), "description only": decodeMeta(desc, nil),
			} {
				if what == "description only" && !tc.wantDesc {
					continue
				}
				if !maps.Equal(got, tc.meta) && !(len(got) == 0 && len(tc.meta) == 0) {
					t.Fatalf("decoded from %s: %v, want %v", what, got, tc.meta)
				}
			}
		})
	}
	t.Run("foreign tags and descriptions are ignored", func(t *testing.T) {
		got := decodeMeta("a network for the web tier", []string{"web", "tier=front", "bad%zz=1", "=x"})
		if !maps.Equal(got, map[string]string{"tier": "front"}) {
			t.Fatalf("decoded %v, want only tier=front", got)
		}
	})
	t.Run("a pair too long for a tag is refused", func(t *testing.T) {
		_, _, err := encodeMeta(map[string]string{"k": strings.Repeat("x", 300)})
		if !errors.Is(err, peers.ErrInvalid) {
			t.Fatalf("encodeMeta of a 300-character value: %v, want ErrInvalid", err)
		}
	})
}

func TestFederatedKeyEscaping(t *testing.T) {
	fed := &Cloud{federated: true}
	in := map[string]string{peers.MetaID: "a", fedPrefix + "x": "b", fedPrefix + peers.MetaID: "c", "plain": "d"}
	out := fed.outMeta(in)
	for k := range out {
		if strings.HasPrefix(k, brokerMetaPrefix) {
			t.Fatalf("escaped metadata %v still has a %s key for the peer broker to refuse", out, brokerMetaPrefix)
		}
	}
	if len(out) != len(in) || out["plain"] != "d" {
		t.Fatalf("escaped metadata %v lost or renamed keys of %v", out, in)
	}
	// Two brokers deep: the inner driver escapes the outer's escaped keys again.
	if back := fed.inMeta(fed.inMeta(fed.outMeta(out))); !maps.Equal(back, in) {
		t.Fatalf("round trip through two brokers = %v, want %v", back, in)
	}
	plain := &Cloud{}
	if got := plain.outMeta(in); !maps.Equal(got, in) {
		t.Fatalf("a plain OpenStack peer got %v, want the keys as they are", got)
	}
}
