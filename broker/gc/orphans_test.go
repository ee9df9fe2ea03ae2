package gc_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/registry"
)

// TestOrphans: a record goes only once it has been an orphan, unchanged,
// for the grace period; a rewritten one, or one whose owner came back, is
// judged afresh. Removed hears of each record removed, once.
func TestOrphans(t *testing.T) {
	const grace = time.Hour
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	type step struct {
		at          time.Duration // after t0
		do          func(ctx context.Context, s *registry.Memory)
		wantRemoved int
		wantLeft    string
	}
	put := func(key string) func(context.Context, *registry.Memory) {
		return func(ctx context.Context, s *registry.Memory) { _, _ = s.Put(ctx, key, []byte(key+time.Now().String())) }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"an orphan goes after the grace", []step{
			{at: 0, wantLeft: "rec/a,rec/b,rec/live"},
			{at: grace / 2, wantLeft: "rec/a,rec/b,rec/live"},
			{at: grace, wantRemoved: 2, wantLeft: "rec/live"},
		}},
		{"a first sighting after the grace keeps it", []step{
			{at: 2 * grace, wantLeft: "rec/a,rec/b,rec/live"},
			{at: 3 * grace, wantRemoved: 2, wantLeft: "rec/live"},
		}},
		{"a rewritten record starts again", []step{
			{at: 0, wantLeft: "rec/a,rec/b,rec/live"},
			{at: grace, do: put("rec/a"), wantRemoved: 1, wantLeft: "rec/a,rec/live"},
			{at: 2 * grace, wantRemoved: 1, wantLeft: "rec/live"},
		}},
		{"an owner that came back", []step{
			{at: 0, wantLeft: "rec/a,rec/b,rec/live"},
			{at: grace / 2, do: put("owner/a"), wantLeft: "rec/a,rec/b,rec/live"},
			{at: grace, do: func(ctx context.Context, s *registry.Memory) { _ = s.Delete(ctx, "owner/a") }, wantRemoved: 1, wantLeft: "rec/a,rec/live"},
			{at: 2 * grace, wantRemoved: 1, wantLeft: "rec/live"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := registry.NewMemory()
			for _, k := range []string{"rec/a", "rec/b", "rec/live", "owner/live"} {
				put(k)(ctx, s)
			}
			var heard []string
			o := &gc.Orphans{Kind: "test", Store: s, Prefixes: []string{"rec/"}, Grace: grace,
				Removed: func(_ context.Context, kv registry.KV) error {
					heard = append(heard, kv.Key)
					return nil
				},
				Orphaned: func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
					var out []registry.KV
					for _, kv := range kvs {
						if _, err := s.Get(ctx, "owner/"+strings.TrimPrefix(kv.Key, "rec/")); err != nil {
							out = append(out, kv)
						}
					}
					return out, nil
				}}
			for i, st := range tc.steps {
				if st.do != nil {
					st.do(ctx, s)
				}
				n, err := o.Collect(ctx, t0.Add(st.at))
				if err != nil {
					t.Fatal(err)
				}
				kvs, _, _ := s.List(ctx, "rec/")
				var left []string
				for _, kv := range kvs {
					left = append(left, kv.Key)
				}
				slices.Sort(left)
				if n != st.wantRemoved || strings.Join(left, ",") != st.wantLeft {
					t.Fatalf("step %d: removed %d, left %v; want %d, %s", i, n, left, st.wantRemoved, st.wantLeft)
				}
			}
			slices.Sort(heard)
			if strings.Join(heard, ",") != "rec/a,rec/b" {
				t.Fatalf("Removed heard of %v; want rec/a and rec/b once each", heard)
			}
		})
	}
}

// TestOrphansRelease: a due record is released before it goes, and one
// whose release failed stays, to be released again on the next pass.
func TestOrphansRelease(t *testing.T) {
	const grace = time.Hour
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	ctx := context.Background()
	s := registry.NewMemory()
	for _, k := range []string{"rec/a", "rec/b"} {
		_, _ = s.Put(ctx, k, []byte(k))
	}
	failing := map[string]bool{"rec/b": true}
	var released []string
	o := &gc.Orphans{Kind: "test", Store: s, Prefixes: []string{"rec/"}, Grace: grace,
		Orphaned: func(_ context.Context, kvs []registry.KV) ([]registry.KV, error) { return kvs, nil },
		Release: func(ctx context.Context, kv registry.KV) error {
			if _, err := s.Get(ctx, kv.Key); err != nil {
				t.Errorf("Release(%s) after the record went", kv.Key)
			}
			released = append(released, kv.Key)
			if failing[kv.Key] {
				return errors.New("peer unreachable")
			}
			return nil
		}}
	left := func() string {
		kvs, _, _ := s.List(ctx, "rec/")
		var keys []string
		for _, kv := range kvs {
			keys = append(keys, kv.Key)
		}
		slices.Sort(keys)
		return strings.Join(keys, ",")
	}
	for i, st := range []struct {
		at      time.Duration
		fixed   bool
		removed int
		wantErr bool
		left    string
	}{
		{at: 0, removed: 0, left: "rec/a,rec/b"},
		{at: grace, removed: 1, wantErr: true, left: "rec/b"},
		{at: grace + time.Minute, fixed: true, removed: 1, left: ""},
	} {
		if st.fixed {
			failing["rec/b"] = false
		}
		n, err := o.Collect(ctx, t0.Add(st.at))
		if (err != nil) != st.wantErr || n != st.removed || left() != st.left {
			t.Fatalf("pass %d: removed %d, err %v, left %q; want %d, error %v, %q", i, n, err, left(), st.removed, st.wantErr, st.left)
		}
	}
	slices.Sort(released)
	if strings.Join(released, ",") != "rec/a,rec/b,rec/b" {
		t.Fatalf("released %v; want rec/a once and rec/b twice (its first release failed)", released)
	}
}
