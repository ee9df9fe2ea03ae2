package registry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestRecords holds Records to one behaviour in memory and not running:
// a group's list, a key's record, a miss with and without fetch.
func TestRecords(t *testing.T) {
	for _, mode := range []struct {
		name    string
		running bool
	}{{"in memory", true}, {"from the store", false}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			store := NewMemory()
			for _, k := range []string{"r/u1/a", "r/u1/b", "r/u2/a", "r/flat"} {
				if _, err := store.Put(ctx, k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			r := NewRecords(store, "r/", decodeString, nil)
			if mode.running {
				go func() { _ = r.Run(ctx) }()
				if err := r.WaitReady(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tests := []struct {
				group string
				want  []string
			}{
				{"u1", []string{"r/u1/a", "r/u1/b"}},
				{"u2", []string{"r/u2/a"}},
				{"nobody", []string{}},
				{"", []string{"r/flat", "r/u1/a", "r/u1/b", "r/u2/a"}},
			}
			for _, tc := range tests {
				t.Run("group "+tc.group, func(t *testing.T) {
					got, err := r.List(ctx, tc.group)
					if err != nil || !slices.Equal(got, tc.want) {
						t.Fatalf("List(%q) = %v, %v; want %v", tc.group, got, err, tc.want)
					}
				})
			}
			if v, err := r.Get(ctx, "r/u2/a", false); err != nil || v != "r/u2/a" {
				t.Fatalf("Get = %q, %v", v, err)
			}
			// Written behind the mirror's back, as another replica would.
			idx, err := store.Put(ctx, "r/u3/new", []byte("fresh"))
			if err != nil {
				t.Fatal(err)
			}
			if v, err := r.Get(ctx, "r/u3/new", true); err != nil || v != "fresh" {
				t.Fatalf("Get with fetch of another's write = %q, %v", v, err)
			}
			if _, err := r.Get(ctx, "r/u3/none", true); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get with fetch of a missing key = %v", err)
			}
			if mode.running {
				if _, err := r.Get(ctx, "r/u9/none", false); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get of a missing key = %v", err)
				}
				if err := r.WaitIndex(ctx, idx); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.Delete(ctx, "r/u1/a"); err != nil {
				t.Fatal(err)
			}
			r.Deleted("r/u1/a")
			if got, _ := r.List(ctx, "u1"); !slices.Equal(got, []string{"r/u1/b"}) {
				t.Fatalf("List after Delete = %v", got)
			}
			if got, _ := r.List(ctx, "u3"); !slices.Equal(got, []string{"fresh"}) {
				t.Fatalf("List of another's write = %v", got)
			}
		})
	}
}
