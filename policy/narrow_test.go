package policy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestNarrowedReads checks what the stock policy's passes key on of a
// peer once the request rules their guarded rules in or out: a server's
// score does not read the disk room, a volume's not the RAM room, and
// deny reads labels and name only for the hints that need them.
func TestNarrowedReads(t *testing.T) {
	c, err := compile(context.Background(), "test", Stock())
	if err != nil {
		t.Fatal(err)
	}
	server := Request{Kind: "server", VCPUs: 1, RAMMiB: 512}
	hinted := server
	hinted.RequiredLabels, hinted.AvailabilityZone = map[string]string{"gpu": "a100"}, "az1"
	for _, tc := range []struct {
		name     string
		nw       *narrower
		req      Request
		has, not []string
	}{
		{"server score", c.scoreNarrow, server, []string{"room.ram_mib", "cost", "status"}, []string{"room.disk_gib"}},
		{"volume score", c.scoreNarrow, Request{Kind: "volume", DiskGiB: 10}, []string{"room.disk_gib", "cost"}, []string{"room.ram_mib"}},
		{"plain deny", c.denyNarrow, server, []string{"status", "shortfall.vcpus"}, []string{"labels", "name"}},
		{"hinted deny", c.denyNarrow, hinted, []string{"status", "labels", "name"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newScope(context.Background(), time.Now().Add(time.Minute))
			defer sc.release()
			reqTerm := requestTerm(tc.req, nil)
			// The key's request part, as the pass builds it.
			reads := c.plan.scoreReads.request
			if tc.nw == c.denyNarrow {
				reads = c.plan.denyReads.request
			}
			s := tc.nw.set(&sc, appendReads(nil, reqTerm, reads), reqTerm)
			var got []string
			if s == nil {
				reads := c.plan.scoreReads.peer
				if tc.nw == c.denyNarrow {
					reads = c.plan.denyReads.peer
				}
				for _, r := range reads {
					got = append(got, pathString(r))
				}
			} else {
				for _, r := range s.peer {
					got = append(got, pathString(r))
				}
			}
			for _, p := range tc.has {
				if !slices.Contains(got, p) {
					t.Errorf("reads %v, want %s among them", got, p)
				}
			}
			for _, p := range tc.not {
				if slices.Contains(got, p) {
					t.Errorf("reads %v, want no %s", got, p)
				}
			}
		})
	}
}

func pathString(r ast.Ref) string {
	s := ""
	for i, t := range r {
		if i > 0 {
			s += "."
		}
		if str, ok := t.Value.(ast.String); ok {
			s += string(str)
		} else {
			s += t.String()
		}
	}
	return s
}
