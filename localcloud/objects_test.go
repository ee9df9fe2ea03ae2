package localcloud_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// objectFiles lists the files under the cloud's object store, relative
// to it, sorted.
func objectFiles(t *testing.T, cfg localcloud.Config) []string {
	t.Helper()
	root := filepath.Join(cfg.DataDir, "objects")
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// dataFiles are the object data files among objectFiles.
func dataFiles(t *testing.T, cfg localcloud.Config) []string {
	return slices.DeleteFunc(objectFiles(t, cfg), func(f string) bool { return !strings.HasSuffix(f, ".data") })
}

func putString(t *testing.T, c *localcloud.Cloud, ctr, name, body string, spec peers.ObjectSpec) {
	t.Helper()
	spec.Size = int64(len(body))
	if _, err := c.PutObject(t.Context(), ctr, name, strings.NewReader(body), spec); err != nil {
		t.Fatalf("PutObject(%s, %q): %v", ctr, name, err)
	}
}

func readObject(c *localcloud.Cloud, ctr, name string, rng *peers.ByteRange) ([]byte, error) {
	_, rc, err := c.GetObject(context.Background(), ctr, name, rng)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// restart closes c and opens a new cloud over the same data directory.
func restart(t *testing.T, c *localcloud.Cloud, cfg localcloud.Config) *localcloud.Cloud {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2, _ := newCloud(t, cfg)
	return c2
}

func TestObjectsSurviveRestart(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	ctx := t.Context()
	for _, ctr := range []string{"one", "two", "empty"} {
		if err := c.CreateContainer(ctx, ctr); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	putString(t, c, "one", "a/b", "first", peers.ObjectSpec{ContentType: "text/plain", Metadata: map[string]string{"k": "v"}, DeleteAt: later})
	putString(t, c, "one", "日本", "second", peers.ObjectSpec{})
	putString(t, c, "one", "replaced", "old", peers.ObjectSpec{})
	putString(t, c, "one", "replaced", "new!", peers.ObjectSpec{})
	putString(t, c, "two", "x", "x", peers.ObjectSpec{})
	if _, err := c.UpdateObject(ctx, "two", "x", peers.ObjectUpdate{Metadata: map[string]string{"after": "update"}}); err != nil {
		t.Fatal(err)
	}
	type snapshot struct {
		lists map[string][]peers.ObjectEntry
		heads map[string]peers.ObjectInfo
		stats map[string]peers.ContainerStats
	}
	take := func(c *localcloud.Cloud) snapshot {
		s := snapshot{map[string][]peers.ObjectEntry{}, map[string]peers.ObjectInfo{}, map[string]peers.ContainerStats{}}
		for _, ctr := range []string{"one", "two", "empty"} {
			l, err := c.ListObjects(ctx, ctr, peers.ObjectListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.lists[ctr] = l
			for _, e := range l {
				h, err := c.HeadObject(ctx, ctr, e.Name)
				if err != nil {
					t.Fatal(err)
				}
				s.heads[ctr+"/"+e.Name] = h
			}
			if s.stats[ctr], err = c.ContainerStats(ctx, ctr); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	before := take(c)
	c2 := restart(t, c, cfg)
	after := take(c2)
	for k, h := range before.heads {
		a := after.heads[k]
		if a.Name != h.Name || a.ETag != h.ETag || a.Size != h.Size || a.ContentType != h.ContentType ||
			!a.LastModified.Equal(h.LastModified) || !a.DeleteAt.Equal(h.DeleteAt) || !maps.Equal(a.Metadata, h.Metadata) {
			t.Errorf("object %s after restart = %+v, before %+v", k, a, h)
		}
	}
	if len(after.heads) != len(before.heads) || !maps.Equal(after.stats, before.stats) {
		t.Fatalf("after restart: %d objects, stats %v; before %d, %v", len(after.heads), after.stats, len(before.heads), before.stats)
	}
	if got, err := readObject(c2, "one", "replaced", nil); err != nil || string(got) != "new!" {
		t.Fatalf("replaced object after restart = %q, %v", got, err)
	}
	if n := len(dataFiles(t, cfg)); n != 4 {
		t.Fatalf("%d data files after restart, want 4 (one per object): %v", n, objectFiles(t, cfg))
	}
}

// TestObjectLeftoversRemovedAtStart plants what a crash leaves (a
// temporary record, an uncommitted data file, a half-made and a
// half-deleted container) and expects a restart to remove exactly those.
func TestObjectLeftoversRemovedAtStart(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	if err := c.CreateContainer(t.Context(), "ctr"); err != nil {
		t.Fatal(err)
	}
	putString(t, c, "ctr", "kept", "kept", peers.ObjectSpec{})
	want := objectFiles(t, cfg)
	data := dataFiles(t, cfg)[0]
	shard := filepath.Join(cfg.DataDir, "objects", filepath.Dir(data))
	root := filepath.Join(cfg.DataDir, "objects")
	for _, p := range []string{
		filepath.Join(shard, ".tmp-123"),
		filepath.Join(shard, strings.Repeat("ab", 32)+".0011223344556677.data"),
		filepath.Join(shard, strings.TrimSuffix(filepath.Base(data), ".data")[:64]+".ffeeddccbbaa9988.data"),
		filepath.Join(root, ".tmp-ctr", "container.json"),
		filepath.Join(root, ".trash-1", "ab", "x.data"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("leftover"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c2 := restart(t, c, cfg)
	if got := objectFiles(t, cfg); !slices.Equal(got, want) {
		t.Fatalf("files after restart:\n%q\nwant only the store's own:\n%q", got, want)
	}
	if got, err := readObject(c2, "ctr", "kept", nil); err != nil || string(got) != "kept" {
		t.Fatalf("object after restart = %q, %v", got, err)
	}
}

// damage overwrites one byte of the only object's data file behind the
// store's back and returns the file's path.
func damage(t *testing.T, cfg localcloud.Config, off int64) string {
	t.Helper()
	path := filepath.Join(cfg.DataDir, "objects", dataFiles(t, cfg)[0])
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("X"), off); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestObjectCorruptionDetected damages stored bytes behind the store's
// back: a full read fails at its end instead of passing them on.
func TestObjectCorruptionDetected(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	if err := c.CreateContainer(t.Context(), "ctr"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("0123456789", 10000)
	putString(t, c, "ctr", "obj", body, peers.ObjectSpec{})
	path := damage(t, cfg, 54321)

	got, err := readObject(c, "ctr", "obj", nil)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("full read of a damaged object: %d bytes, error %v; want an error saying it is corrupt", len(got), err)
	}
	// A range cannot be checked against the whole object's MD5.
	if got, err := readObject(c, "ctr", "obj", &peers.ByteRange{First: 0, Last: 9}); err != nil || string(got) != "0123456789" {
		t.Fatalf("ranged read of an undamaged part = %q, %v", got, err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := readObject(c, "ctr", "obj", nil); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("read of a truncated object: %v; want an error saying it is corrupt", err)
	}
}

// TestObjectReaper expires objects and expects the reaper to remove their
// files, and nothing else.
func TestObjectReaper(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	ctx := t.Context()
	if err := c.CreateContainer(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	putString(t, c, "ctr", "live", "live", peers.ObjectSpec{})
	want := objectFiles(t, cfg)
	past := time.Now().Add(-time.Minute)
	putString(t, c, "ctr", "expired-at-put", "gone", peers.ObjectSpec{DeleteAt: past})
	putString(t, c, "ctr", "expired-by-update", "gone", peers.ObjectSpec{})
	if _, err := c.UpdateObject(ctx, "ctr", "expired-by-update", peers.ObjectUpdate{DeleteAt: past}); err != nil {
		t.Fatal(err)
	}
	// Expired, then put again before the reaper ran: the new object stays.
	putString(t, c, "ctr", "back", "old", peers.ObjectSpec{DeleteAt: past})
	if st, err := c.ContainerStats(ctx, "ctr"); err != nil || st.Objects != 1 {
		t.Fatalf("ContainerStats = %+v, %v; want the one live object", st, err)
	}
	putString(t, c, "ctr", "back", "new", peers.ObjectSpec{})
	localcloud.ReapObjects(c)
	got := objectFiles(t, cfg)
	if len(got) != len(want)+2 {
		t.Fatalf("files after reaping:\n%q\nwant the live objects' record and data only (before: %q)", got, want)
	}
	if b, err := readObject(c, "ctr", "back", nil); err != nil || string(b) != "new" {
		t.Fatalf("object put over an expired one, after reaping = %q, %v", b, err)
	}
	if err := c.DeleteObject(ctx, "ctr", "expired-at-put"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("DeleteObject of an expired object = %v, want ErrNotFound", err)
	}
}

func TestObjectQuota(t *testing.T) {
	cfg := oneHost(t)
	cfg.ObjectQuotaBytes = 1000
	c, _ := newCloud(t, cfg)
	ctx := t.Context()
	if err := c.CreateContainer(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	used := func() int64 {
		t.Helper()
		capa, err := c.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if capa.ObjectBytes.Total != 1000 {
			t.Fatalf("ObjectBytes.Total = %d, want the quota 1000", capa.ObjectBytes.Total)
		}
		return capa.ObjectBytes.Used
	}
	body := strings.Repeat("q", 600)
	putString(t, c, "ctr", "first", body, peers.ObjectSpec{})
	if u := used(); u != 600 {
		t.Fatalf("ObjectBytes.Used = %d, want 600", u)
	}
	tests := []struct {
		name string
		size int64
	}{
		{"KnownSize", 600},
		{"UnknownSize", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutObject(ctx, "ctr", "second", strings.NewReader(body), peers.ObjectSpec{Size: tc.size})
			if !errors.Is(err, peers.ErrCapacity) {
				t.Fatalf("PutObject past the quota = %v, want ErrCapacity", err)
			}
			if _, err := c.HeadObject(ctx, "ctr", "second"); !errors.Is(err, peers.ErrNotFound) {
				t.Fatalf("HeadObject of a refused upload = %v, want ErrNotFound", err)
			}
			if u := used(); u != 600 {
				t.Fatalf("ObjectBytes.Used after a refused upload = %d, want 600", u)
			}
		})
	}
	if err := c.DeleteObject(ctx, "ctr", "first"); err != nil {
		t.Fatal(err)
	}
	if u := used(); u != 0 {
		t.Fatalf("ObjectBytes.Used after deleting everything = %d, want 0", u)
	}
	t.Run("ConcurrentUploads", func(t *testing.T) {
		// An upload in progress holds what it has written: a second one
		// that would overshoot the quota with it is refused.
		reached, proceed := make(chan struct{}), make(chan struct{})
		slow := io.MultiReader(strings.NewReader(body), readerFunc(func([]byte) (int, error) {
			close(reached)
			<-proceed
			return 0, io.EOF
		}))
		done := make(chan error, 1)
		go func() {
			_, err := c.PutObject(ctx, "ctr", "slow", slow, peers.ObjectSpec{Size: -1})
			done <- err
		}()
		<-reached // its 600 bytes are written
		for _, size := range []int64{600, -1} {
			_, err := c.PutObject(ctx, "ctr", "fast", strings.NewReader(body), peers.ObjectSpec{Size: size})
			if !errors.Is(err, peers.ErrCapacity) {
				t.Errorf("PutObject of %d bytes (size %d) beside an upload holding 600 of 1000 = %v, want ErrCapacity", len(body), size, err)
			}
		}
		close(proceed)
		if err := <-done; err != nil {
			t.Fatalf("the slow upload: %v", err)
		}
		if u := used(); u != 600 {
			t.Fatalf("ObjectBytes.Used = %d, want 600", u)
		}
	})
}

func TestObjectCapacityWithoutQuota(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	capa, err := c.Capacity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r := capa.ObjectBytes; r.Total <= 0 || r.Used < 0 || r.Used > r.Total {
		t.Fatalf("ObjectBytes = %+v; want the filesystem's size and use", r)
	}
}

func TestDeleteContainerThenRecreate(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	ctx := t.Context()
	if err := c.CreateContainer(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	putString(t, c, "ctr", "expired", "x", peers.ObjectSpec{DeleteAt: time.Now().Add(-time.Second)})
	// Only an expired object: the container counts as empty.
	if err := c.DeleteContainer(ctx, "ctr"); err != nil {
		t.Fatalf("DeleteContainer holding only an expired object: %v", err)
	}
	if got := objectFiles(t, cfg); len(got) != 0 {
		t.Fatalf("files after DeleteContainer: %q, want none", got)
	}
	if err := c.CreateContainer(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.ListObjects(ctx, "ctr", peers.ObjectListOptions{}); err != nil || len(l) != 0 {
		t.Fatalf("a recreated container lists %v, %v; want nothing", l, err)
	}
	c2 := restart(t, c, cfg)
	if st, err := c2.ContainerStats(ctx, "ctr"); err != nil || st != (peers.ContainerStats{}) {
		t.Fatalf("recreated container after restart: %+v, %v", st, err)
	}
}

// TestObjectDamagedRecordKept: a record damaged from outside (never by a
// crash: records are renamed into place whole) hides its object, and
// start-up keeps the record and its data for an operator.
func TestObjectDamagedRecordKept(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	if err := c.CreateContainer(t.Context(), "ctr"); err != nil {
		t.Fatal(err)
	}
	putString(t, c, "ctr", "damaged", "its bytes", peers.ObjectSpec{})
	var record string
	for _, f := range objectFiles(t, cfg) {
		if strings.HasSuffix(f, ".meta") {
			record = filepath.Join(cfg.DataDir, "objects", f)
		}
	}
	putString(t, c, "ctr", "fine", "fine", peers.ObjectSpec{})
	before := objectFiles(t, cfg)
	if err := os.WriteFile(record, []byte("{not json"), 0o640); err != nil {
		t.Fatal(err)
	}
	c2 := restart(t, c, cfg)
	if _, err := c2.HeadObject(t.Context(), "ctr", "damaged"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("HeadObject of an object whose record is damaged = %v, want ErrNotFound", err)
	}
	if got, err := readObject(c2, "ctr", "fine", nil); err != nil || string(got) != "fine" {
		t.Fatalf("the other object = %q, %v", got, err)
	}
	if after := objectFiles(t, cfg); !slices.Equal(after, before) {
		t.Fatalf("files after restart:\n%q\nwant all kept:\n%q", after, before)
	}
}

// TestObjectReadPaths reads a multi-chunk object whole and in a range
// through each way out: Read (io.ReadAll), WriteTo into a plain writer,
// and WriteTo into an io.ReaderFrom (a file here, which like an HTTP
// response over TCP takes the data file as the kernel's source). Each
// gets the bytes exactly; with one byte damaged in the first chunk, each
// fails and none hands out the object's last bytes; so does one cut short
// after it was opened.
func TestObjectReadPaths(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	if err := c.CreateContainer(t.Context(), "ctr"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 300_000) // ~10.3 MiB: three chunks
	putString(t, c, "ctr", "obj", body, peers.ObjectSpec{})
	out := t.TempDir()
	ways := []struct {
		name string
		read func(r io.Reader) ([]byte, error)
	}{
		{"Read", io.ReadAll},
		{"WriteTo plain writer", func(r io.Reader) ([]byte, error) {
			var b bytes.Buffer
			_, err := r.(io.WriterTo).WriteTo(struct{ io.Writer }{&b})
			return b.Bytes(), err
		}},
		{"WriteTo ReaderFrom", func(r io.Reader) ([]byte, error) {
			f, err := os.CreateTemp(out, "copy")
			if err != nil {
				return nil, err
			}
			defer f.Close()
			if _, err := r.(io.WriterTo).WriteTo(f); err != nil {
				got, _ := os.ReadFile(f.Name())
				return got, err
			}
			return os.ReadFile(f.Name())
		}},
	}
	rng := &peers.ByteRange{First: 5_000_000, Last: 9_000_000}
	read := func(t *testing.T, way func(io.Reader) ([]byte, error), rng *peers.ByteRange) ([]byte, error) {
		_, rc, err := c.GetObject(t.Context(), "ctr", "obj", rng)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		return way(rc)
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			if got, err := read(t, w.read, nil); err != nil || string(got) != body {
				t.Fatalf("whole read: %d bytes, %v; want the %d stored", len(got), err, len(body))
			}
			if got, err := read(t, w.read, rng); err != nil || string(got) != body[rng.First:rng.Last+1] {
				t.Fatalf("ranged read: %d bytes, %v; want %d", len(got), err, rng.Last-rng.First+1)
			}
		})
	}
	damage(t, cfg, 1000)
	for _, w := range ways {
		t.Run(w.name+" damaged", func(t *testing.T) {
			got, err := read(t, w.read, nil)
			if err == nil || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("whole read of a damaged object: %d bytes, %v; want an error saying it is corrupt", len(got), err)
			}
			if len(got) >= len(body) {
				t.Fatalf("whole read of a damaged object handed out all %d bytes", len(got))
			}
		})
	}
	// Cut short after it was opened: the mapped check faults, which must
	// come back as an error, not end the process.
	for _, w := range ways {
		t.Run(w.name+" truncated while open", func(t *testing.T) {
			putString(t, c, "ctr", "obj", body, peers.ObjectSpec{})
			_, rc, err := c.GetObject(t.Context(), "ctr", "obj", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if err := os.Truncate(filepath.Join(cfg.DataDir, "objects", dataFiles(t, cfg)[0]), 6<<20); err != nil {
				t.Fatal(err)
			}
			got, err := w.read(rc)
			if err == nil || !strings.Contains(err.Error(), "corrupt") || len(got) >= len(body) {
				t.Fatalf("read of an object truncated while open: %d bytes, %v; want an error saying it is corrupt", len(got), err)
			}
		})
	}
}
