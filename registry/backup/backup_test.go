package backup_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/backup"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// seed writes a representative state: nested keys, an empty value, a
// binary value and one near the store's size limit, plus a lease-held lock.
func seed(t *testing.T, s registry.Store) (want map[string][]byte, lease registry.Lease) {
	t.Helper()
	ctx := context.Background()
	want = map[string][]byte{
		"cluster/id":                     []byte("3f1c"),
		"identity/projects/p1":           []byte(`{"id":"p1","name":"demo"}`),
		"index/servers/s1":               []byte(`{"peer":"local"}`),
		"peers/local":                    {},
		"credentials/peers/eu":           {0, 1, 2, 0xff, '\n', '"'},
		"focus/templates/web/versions/3": bytes.Repeat([]byte("x"), registry.MaxValueSize),
	}
	for k, v := range want {
		if _, err := s.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.TryLock(ctx, "deploy/locks/d1", []byte("broker-a"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return want, l
}

func contents(t *testing.T, s registry.Store) map[string][]byte {
	t.Helper()
	kvs, _, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, kv := range kvs {
		got[kv.Key] = kv.Value
	}
	return got
}

func equal(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("restored %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
			t.Errorf("key %q: restored %d bytes (present %v), want %d", k, len(g), ok, len(v))
		}
	}
}

// roundTrip backs up src and restores into dst, for every pair of backends.
func roundTrip(t *testing.T, src, dst registry.Store) {
	ctx := context.Background()
	want, _ := seed(t, src)
	var file bytes.Buffer
	saved, err := backup.Save(ctx, src, &file, "test")
	if err != nil {
		t.Fatal(err)
	}
	if saved.Keys != len(want) || saved.SkippedLeased != 1 {
		t.Fatalf("saved %d keys, skipped %d leased; want %d and 1", saved.Keys, saved.SkippedLeased, len(want))
	}
	restored, err := backup.Restore(ctx, dst, bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if restored.Keys != saved.Keys || restored.SHA256 != saved.SHA256 || restored.Header.StoreIndex != saved.Header.StoreIndex {
		t.Fatalf("restore summary %+v differs from the backup's %+v", restored, saved)
	}
	equal(t, contents(t, dst), want)
	// A second restore into the now populated store is refused and
	// changes nothing.
	if _, err := backup.Restore(ctx, dst, bytes.NewReader(file.Bytes())); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a populated store: %v, want ErrNotEmpty", err)
	}
	equal(t, contents(t, dst), want)

	// The lock was not restored: a restored broker can take it at once.
	l, err := dst.TryLock(ctx, "deploy/locks/d1", []byte("broker-b"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("the lock came back held: %v", err)
	}
	_ = l.Release(ctx)
}

func TestRoundTripMemory(t *testing.T) {
	roundTrip(t, registry.NewMemory(), registry.NewMemory())
}

// TestRoundTripConsul moves an installation between two real Consul
// agents (a fresh cluster, as after losing the first) and between
// prefixes of one agent.
func TestRoundTripConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Consul agents")
	}
	a, b := consultest.Start(t), consultest.Start(t)
	open := func(agent *consultest.Agent, prefix string) registry.Store {
		s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: prefix}, logrus.New())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	run := fmt.Sprint(time.Now().UnixNano())
	t.Run("fresh cluster", func(t *testing.T) { roundTrip(t, open(a, "src-"+run+"/"), open(b, "cloudmux/")) })
	t.Run("to memory", func(t *testing.T) { roundTrip(t, open(a, "src2-"+run+"/"), registry.NewMemory()) })
	t.Run("other prefix", func(t *testing.T) { roundTrip(t, open(a, "src3-"+run+"/"), open(a, "dst3-"+run+"/")) })
}

// TestBadFilesWriteNothing: every damaged file is refused with ErrCorrupt
// (or a version error) before a single key is written.
func TestBadFilesWriteNothing(t *testing.T) {
	ctx := context.Background()
	src := registry.NewMemory()
	seed(t, src)
	var good bytes.Buffer
	if _, err := backup.Save(ctx, src, &good, "test"); err != nil {
		t.Fatal(err)
	}
	plain := gunzip(t, good.Bytes())
	lines := strings.SplitAfter(plain, "\n")
	regzip := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = io.WriteString(zw, s)
		_ = zw.Close()
		return b.Bytes()
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"not gzip", []byte("hello"), "not gzip"},
		{"truncated gzip", good.Bytes()[:good.Len()/2], "corrupt"},
		{"no trailer", regzip(strings.Join(lines[:len(lines)-2], "")), "corrupt"},
		{"altered value", regzip(strings.Replace(plain, `"M2YxYw=="`, `"M2YxZA=="`, 1)), "checksum mismatch"},
		{"dropped key", regzip(lines[0] + strings.Join(lines[2:], "")), "trailer counts"},
		{"other format", regzip(strings.Replace(plain, `"format":"cloudmux-state"`, `"format":"other"`, 1)), "format"},
		{"newer version", regzip(strings.Replace(plain, `"version":1`, `"version":2`, 1)), "version 2"},
		{"invalid key", regzip(strings.Replace(plain, `"key":"cluster/id"`, `"key":"/cluster/id"`, 1)), "starts with"},
		{"data after trailer", regzip(plain + lines[1]), "after the trailer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := registry.NewMemory()
			_, err := backup.Restore(ctx, dst, bytes.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v, want an error containing %q", err, tc.want)
			}
			if n := len(contents(t, dst)); n != 0 {
				t.Fatalf("a refused file wrote %d keys", n)
			}
		})
	}
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestRestoreRaceFailsLoudly: a key written by someone else between the
// emptiness check and the restore's own write fails the restore rather
// than being overwritten.
func TestRestoreRaceFailsLoudly(t *testing.T) {
	ctx := context.Background()
	src := registry.NewMemory()
	if _, err := src.Put(ctx, "cluster/id", []byte("old")); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := backup.Save(ctx, src, &file, "test"); err != nil {
		t.Fatal(err)
	}
	dst := &racingStore{Store: registry.NewMemory()}
	_, err := backup.Restore(ctx, dst, &file)
	if !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("restore over a concurrent writer: %v, want ErrConflict", err)
	}
	if kv, _ := dst.Get(ctx, "cluster/id"); string(kv.Value) != "new broker" {
		t.Fatalf("the concurrent writer's record was replaced: %q", kv.Value)
	}
}

// racingStore lets a "broker" create cluster/id right after the restore
// found the store empty.
type racingStore struct {
	registry.Store
	listed bool
}

func (r *racingStore) List(ctx context.Context, prefix string) ([]registry.KV, uint64, error) {
	kvs, idx, err := r.Store.List(ctx, prefix)
	if !r.listed {
		r.listed = true
		_, _ = r.Store.Put(ctx, "cluster/id", []byte("new broker"))
	}
	return kvs, idx, err
}
