// Package gctest helps test the judges of the broker's gc.Orphans
// collectors: what a judge calls a leftover, listed as the collector
// lists it.
package gctest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

// Judge is a gc.Orphans' Orphaned.
type Judge func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error)

// Leftovers lists prefixes in store, as the collector does, and returns
// the keys judge calls leftovers, sorted and space-separated.
func Leftovers(t testing.TB, store registry.Store, prefixes []string, judge Judge) string {
	t.Helper()
	ctx := context.Background()
	var kvs []registry.KV
	for _, p := range prefixes {
		got, _, err := store.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		kvs = append(kvs, got...)
	}
	left, err := judge(ctx, kvs)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(left))
	for _, kv := range left {
		keys = append(keys, kv.Key)
	}
	slices.Sort(keys)
	return strings.Join(keys, " ")
}
