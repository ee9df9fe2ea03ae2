package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

// TestRankByName checks the integer-keyed ranking against rank on random
// verdicts: ties on score, repeated names, denied peers, a score out of
// range (the fallback), and a name order kept from a different list.
func TestRankByName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		names int // distinct names
		wild  bool
	}{
		{"distinct names", 40, 40, false},
		{"repeated names", 40, 5, false},
		{"out of range scores", 20, 20, true},
		{"one peer", 1, 1, false},
		{"none", 0, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.names)))
			var orders nameOrders
			for range 50 {
				ps := make([]registry.Peer, tc.n)
				vs := make([]verdict, tc.n)
				for i := range ps {
					ps[i] = registry.Peer{ID: fmt.Sprint(i), Name: fmt.Sprintf("p%02d", rng.IntN(tc.names))}
					vs[i] = verdict{allowed: rng.IntN(4) != 0, score: rng.IntN(4) * 30, reasons: []string{fmt.Sprint(i)}}
					if tc.wild && rng.IntN(5) == 0 {
						vs[i].score = 150 - rng.IntN(300)
					}
				}
				want := rank("v", ps, vs, nil)
				got := rankByName("v", ps, vs, orders.of(ps), make([]uint64, tc.n), nil)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("rankByName differs from rank:\n got %v\nwant %v", got.Verdicts, want.Verdicts)
				}
			}
		})
	}
}
