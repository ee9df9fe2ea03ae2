package identity

import (
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

// TestSinkByUser: the assignments sink keeps each user's keys apart, so a
// user's projects are that user's records only, through sets and unsets.
func TestSinkByUser(t *testing.T) {
	s := &kvSink{byKey: map[string]registry.KV{}, byDir: map[string]map[string]struct{}{},
		second: assignmentActor, bySecond: map[string]map[string]struct{}{}}
	key := func(project, user string) string { return assignmentKey(project, user, "member") }
	for _, k := range []string{key("p1", "ann"), key("p2", "ann"), key("p2", "bob"), assignmentsPrefix + "bad"} {
		s.Set(k, registry.KV{Key: k})
	}
	s.Unset(key("p1", "ann"))
	keysOf := func(user string) []string {
		var out []string
		for _, kv := range s.bySecondKey(user) {
			out = append(out, kv.Key)
		}
		return out
	}
	tests := []struct {
		name string
		user string
		want []string
	}{
		{"ann after an unset", "ann", []string{key("p2", "ann")}},
		{"bob", "bob", []string{key("p2", "bob")}},
		{"nobody", "eve", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keysOf(tt.user); !slices.Equal(got, tt.want) {
				t.Fatalf("keys = %v, want %v", got, tt.want)
			}
		})
	}
	s.Unset(key("p2", "bob"))
	if _, ok := s.bySecond["bob"]; ok {
		t.Fatal("a user with no assignments left keeps an empty set")
	}
}
