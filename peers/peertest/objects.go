package peertest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// testObjects holds a cloud implementing peers.Objects to the contract;
// clouds without object storage skip it.
func (s *suite) testObjects(t *testing.T) {
	o, ok := s.c.(peers.Objects)
	if !ok {
		t.Skip("the cloud does not implement peers.Objects")
	}
	os := &objSuite{suite: s, o: o}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Containers", os.testContainers},
		{"ContainerListing", os.testContainerListing},
		{"PutGet", os.testPutGet},
		{"PutRefusals", os.testPutRefusals},
		{"Ranges", os.testRanges},
		{"Metadata", os.testMetadata},
		{"Expiry", os.testExpiry},
		{"Listing", os.testListing},
		{"Stats", os.testStats},
		{"ConcurrentPuts", os.testConcurrentPuts},
		{"ContextCanceled", os.testObjectsContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

type objSuite struct {
	*suite
	o peers.Objects
}

// container creates a fresh container, emptied and deleted at cleanup.
func (s *objSuite) container(t *testing.T) string {
	t.Helper()
	name := s.name("ctr")
	if err := s.o.CreateContainer(t.Context(), name); err != nil {
		t.Fatalf("CreateContainer(%s): %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		for {
			page, err := s.o.ListObjects(ctx, name, peers.ObjectListOptions{})
			if err != nil || len(page) == 0 {
				break
			}
			for _, e := range page {
				if err := s.o.DeleteObject(ctx, name, e.Name); err != nil && !errors.Is(err, peers.ErrNotFound) {
					t.Errorf("cleanup: DeleteObject(%s, %q): %v", name, e.Name, err)
					return
				}
			}
		}
		if err := s.o.DeleteContainer(ctx, name); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeleteContainer(%s): %v", name, err)
		}
	})
	return name
}

// put stores data and checks what PutObject answers.
func (s *objSuite) put(t *testing.T, ctr, name string, data []byte, spec peers.ObjectSpec) peers.ObjectInfo {
	t.Helper()
	info, err := s.o.PutObject(t.Context(), ctr, name, bytes.NewReader(data), spec)
	if err != nil {
		t.Fatalf("PutObject(%s, %q, %d bytes): %v", ctr, name, len(data), err)
	}
	if info.Name != name || info.Size != int64(len(data)) || info.ETag != md5hex(data) || info.LastModified.IsZero() {
		t.Fatalf("PutObject(%s, %q) = %+v; want name, size %d, ETag %s and a LastModified", ctr, name, info, len(data), md5hex(data))
	}
	return info
}

// get reads a whole object (or a range) and returns its info and bytes.
func (s *objSuite) get(ctx context.Context, ctr, name string, rng *peers.ByteRange) (peers.ObjectInfo, []byte, error) {
	info, rc, err := s.o.GetObject(ctx, ctr, name, rng)
	if err != nil {
		return info, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return info, b, err
}

// wantObject fails t unless ctr/name holds exactly data.
func (s *objSuite) wantObject(t *testing.T, what, ctr, name string, data []byte) {
	t.Helper()
	info, got, err := s.get(t.Context(), ctr, name, nil)
	if err != nil {
		t.Fatalf("%s: GetObject(%s, %q): %v", what, ctr, name, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: GetObject(%s, %q) read %d bytes differing from the %d expected (first difference at %d)", what, ctr, name, len(got), len(data), firstDiff(got, data))
	}
	if info.Size != int64(len(data)) || info.ETag != md5hex(data) {
		t.Fatalf("%s: GetObject(%s, %q) info = size %d ETag %s; want %d, %s", what, ctr, name, info.Size, info.ETag, len(data), md5hex(data))
	}
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func (s *objSuite) testContainers(t *testing.T) {
	ctx := t.Context()
	name := s.container(t)
	if err := s.o.CreateContainer(ctx, name); err != nil {
		t.Fatalf("CreateContainer of an existing container: %v; want nil (PUT is idempotent)", err)
	}
	if st, err := s.o.ContainerStats(ctx, name); err != nil || st != (peers.ContainerStats{}) {
		t.Fatalf("ContainerStats of a new container = %+v, %v; want zero", st, err)
	}
	if got, err := s.o.ListObjects(ctx, name, peers.ObjectListOptions{}); err != nil || len(got) != 0 {
		t.Fatalf("ListObjects of a new container = %v, %v; want none", got, err)
	}
	s.put(t, name, "x", []byte("x"), peers.ObjectSpec{Size: 1})
	wantErr(t, "DeleteContainer of a container holding an object", s.o.DeleteContainer(ctx, name), peers.ErrConflict)
	if err := s.o.DeleteObject(ctx, name, "x"); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	wantErr(t, "DeleteObject again", s.o.DeleteObject(ctx, name, "x"), peers.ErrNotFound)
	if err := s.o.DeleteContainer(ctx, name); err != nil {
		t.Fatalf("DeleteContainer of an emptied container: %v", err)
	}

	missing := name // deleted just now
	calls := []struct {
		name string
		call func() error
	}{
		{"DeleteContainer", func() error { return s.o.DeleteContainer(ctx, missing) }},
		{"ContainerStats", func() error { _, err := s.o.ContainerStats(ctx, missing); return err }},
		{"ListObjects", func() error { _, err := s.o.ListObjects(ctx, missing, peers.ObjectListOptions{}); return err }},
		{"PutObject", func() error {
			_, err := s.o.PutObject(ctx, missing, "x", strings.NewReader("x"), peers.ObjectSpec{Size: 1})
			return err
		}},
		{"GetObject", func() error { _, _, err := s.get(ctx, missing, "x", nil); return err }},
		{"HeadObject", func() error { _, err := s.o.HeadObject(ctx, missing, "x"); return err }},
		{"UpdateObject", func() error { _, err := s.o.UpdateObject(ctx, missing, "x", peers.ObjectUpdate{}); return err }},
		{"DeleteObject", func() error { return s.o.DeleteObject(ctx, missing, "x") }},
	}
	for _, tc := range calls {
		t.Run("Missing/"+tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" on a missing container", tc.call(), peers.ErrNotFound)
		})
	}
	t.Run("BadNames", func(t *testing.T) {
		for _, bad := range []string{"", "a/b", strings.Repeat("c", peers.MaxContainerNameBytes+1)} {
			wantErr(t, fmt.Sprintf("CreateContainer(%.20q)", bad), s.o.CreateContainer(ctx, bad), peers.ErrInvalid)
		}
	})
}

// testContainerListing lists containers by a prefix only this test's
// containers have (the suite's other tests make theirs at the same time).
func (s *objSuite) testContainerListing(t *testing.T) {
	ctx := t.Context()
	prefix := s.name("lst") + "-"
	var names []string
	for _, suffix := range []string{"b", "a", "c"} {
		name := prefix + suffix
		if err := s.o.CreateContainer(ctx, name); err != nil {
			t.Fatalf("CreateContainer(%s): %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := s.cleanupCtx()
			defer cancel()
			if err := s.o.DeleteContainer(ctx, name); err != nil && !errors.Is(err, peers.ErrNotFound) {
				t.Errorf("cleanup: DeleteContainer(%s): %v", name, err)
			}
		})
		names = append(names, name)
	}
	slices.Sort(names)
	cases := []struct {
		name          string
		prefix, after string
		limit         int
		want          []string
	}{
		{"All", prefix, "", 0, names},
		{"Limit", prefix, "", 2, names[:2]},
		{"Marker", prefix, names[0], 0, names[1:]},
		{"MarkerAndLimit", prefix, names[0], 1, names[1:2]},
		{"PastTheEnd", prefix, names[2], 0, nil},
		{"OtherPrefix", prefix + "zz", "", 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.o.ListContainers(ctx, tc.prefix, tc.after, tc.limit)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ListContainers(%q, %q, %d) = %q, %v; want %q", tc.prefix, tc.after, tc.limit, got, err, tc.want)
			}
		})
	}
	t.Run("Deleted", func(t *testing.T) {
		if err := s.o.DeleteContainer(ctx, names[1]); err != nil {
			t.Fatal(err)
		}
		got, err := s.o.ListContainers(ctx, prefix, "", 0)
		if want := []string{names[0], names[2]}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("ListContainers after a delete = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("BadLimit", func(t *testing.T) {
		for _, limit := range []int{-1, peers.MaxListLimit + 1} {
			_, err := s.o.ListContainers(ctx, prefix, "", limit)
			wantErr(t, fmt.Sprintf("ListContainers with limit %d", limit), err, peers.ErrInvalid)
		}
	})
}

func (s *objSuite) testPutGet(t *testing.T) {
	ctr := s.container(t)
	// A few MB, not a multiple of any block size.
	payload := imageBytes(3<<20+4321, 7)
	tests := []struct {
		name string
		data []byte
		size int64
	}{
		{"KnownSize", payload, int64(len(payload))},
		{"UnknownSize", payload, -1},
		{"Empty", nil, 0},
		{"EmptyUnknownSize", nil, -1},
		{"Small", []byte("hello, object"), 13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "putget/" + tc.name
			info := s.put(t, ctr, name, tc.data, peers.ObjectSpec{Size: tc.size, ETag: md5hex(tc.data)})
			s.wantObject(t, "after PutObject", ctr, name, tc.data)
			head, err := s.o.HeadObject(t.Context(), ctr, name)
			if err != nil {
				t.Fatalf("HeadObject: %v", err)
			}
			if head.Name != name || head.Size != info.Size || head.ETag != info.ETag || !head.LastModified.Equal(info.LastModified) {
				t.Fatalf("HeadObject = %+v; want what PutObject returned, %+v", head, info)
			}
		})
	}
	t.Run("Replace", func(t *testing.T) {
		name := "putget/replace"
		s.put(t, ctr, name, payload[:1000], peers.ObjectSpec{Size: 1000})
		s.put(t, ctr, name, payload[1000:1500], peers.ObjectSpec{Size: -1})
		s.wantObject(t, "after replacing", ctr, name, payload[1000:1500])
	})
	t.Run("Names", func(t *testing.T) {
		for _, name := range []string{"dir/sub/leaf", "ünïcödé/日本語 name", "with space and %2F", "/leading//double/", strings.Repeat("n", peers.MaxObjectNameBytes)} {
			s.put(t, ctr, name, []byte(name), peers.ObjectSpec{Size: int64(len(name))})
			s.wantObject(t, "object named "+name, ctr, name, []byte(name))
		}
	})
	t.Run("Missing", func(t *testing.T) {
		_, _, err := s.get(t.Context(), ctr, "no such object", nil)
		wantErr(t, "GetObject of a missing object", err, peers.ErrNotFound)
		_, err = s.o.HeadObject(t.Context(), ctr, "no such object")
		wantErr(t, "HeadObject of a missing object", err, peers.ErrNotFound)
	})
}

// testPutRefusals checks that a PutObject that fails leaves the object it
// would have replaced, whole.
func (s *objSuite) testPutRefusals(t *testing.T) {
	ctr := s.container(t)
	prev := imageBytes(200<<10+17, 11)
	next := imageBytes(300<<10+5, 12)
	const name = "refusals/object"
	s.put(t, ctr, name, prev, peers.ObjectSpec{Size: int64(len(prev)), ContentType: "application/x-prev", Metadata: map[string]string{"v": "prev"}})
	tests := []struct {
		name string
		data io.Reader
		spec peers.ObjectSpec
		want error // nil: any error
	}{
		{"ETagMismatch", bytes.NewReader(next), peers.ObjectSpec{Size: int64(len(next)), ETag: md5hex(prev)}, peers.ErrInvalid},
		{"ETagMismatchUnknownSize", bytes.NewReader(next), peers.ObjectSpec{Size: -1, ETag: md5hex(prev)}, peers.ErrInvalid},
		{"ShorterThanSize", bytes.NewReader(next), peers.ObjectSpec{Size: int64(len(next)) + 1}, peers.ErrInvalid},
		{"LongerThanSize", bytes.NewReader(next), peers.ObjectSpec{Size: int64(len(next)) - 1}, peers.ErrInvalid},
		{"ReaderBreaks", &brokenReader{data: next, n: len(next) / 2}, peers.ObjectSpec{Size: int64(len(next))}, nil},
		{"ReaderBreaksUnknownSize", &brokenReader{data: next, n: len(next) / 2}, peers.ObjectSpec{Size: -1}, nil},
		{"BadMetadata", bytes.NewReader(next), peers.ObjectSpec{Size: -1, Metadata: map[string]string{"k": strings.Repeat("v", peers.MaxObjectMetaValBytes+1)}}, peers.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.o.PutObject(t.Context(), ctr, name, tc.data, tc.spec)
			if tc.want != nil {
				wantErr(t, "PutObject", err, tc.want)
			} else if err == nil {
				t.Fatal("PutObject with a reader that breaks mid-way returned no error")
			}
			s.wantObject(t, "after a refused PutObject", ctr, name, prev)
			head, err := s.o.HeadObject(t.Context(), ctr, name)
			if err != nil || head.ContentType != "application/x-prev" || head.Metadata["v"] != "prev" {
				t.Fatalf("HeadObject after a refused PutObject = %+v, %v; want the previous content type and metadata", head, err)
			}
		})
	}
	t.Run("BadNames", func(t *testing.T) {
		for _, bad := range []string{"", strings.Repeat("n", peers.MaxObjectNameBytes+1), "bad\xffutf8"} {
			_, err := s.o.PutObject(t.Context(), ctr, bad, strings.NewReader("x"), peers.ObjectSpec{Size: 1})
			wantErr(t, fmt.Sprintf("PutObject(%.20q)", bad), err, peers.ErrInvalid)
		}
	})
	t.Run("NothingLeft", func(t *testing.T) {
		// Refused uploads of a new name leave no object either.
		_, err := s.o.PutObject(t.Context(), ctr, "refusals/new", bytes.NewReader(next), peers.ObjectSpec{Size: -1, ETag: md5hex(prev)})
		wantErr(t, "PutObject of a new name with a mismatched ETag", err, peers.ErrInvalid)
		_, err = s.o.HeadObject(t.Context(), ctr, "refusals/new")
		wantErr(t, "HeadObject after a refused first PutObject", err, peers.ErrNotFound)
	})
}

func (s *objSuite) testRanges(t *testing.T) {
	ctr := s.container(t)
	data := imageBytes(100<<10+3, 13)
	size := int64(len(data))
	s.put(t, ctr, "ranged", data, peers.ObjectSpec{Size: size})
	s.put(t, ctr, "empty", nil, peers.ObjectSpec{Size: 0})
	tests := []struct {
		name        string
		object      string
		rng         peers.ByteRange
		first, last int64 // the bytes expected, inclusive
		want        error
	}{
		{"FirstLast", "ranged", peers.ByteRange{First: 10, Last: 99}, 10, 99, nil},
		{"OneByte", "ranged", peers.ByteRange{First: 0, Last: 0}, 0, 0, nil},
		{"LastByte", "ranged", peers.ByteRange{First: size - 1, Last: size - 1}, size - 1, size - 1, nil},
		{"OpenEnd", "ranged", peers.ByteRange{First: 4096, Last: -1}, 4096, size - 1, nil},
		{"LastPastEnd", "ranged", peers.ByteRange{First: 5, Last: size + 1000}, 5, size - 1, nil},
		{"Suffix", "ranged", peers.ByteRange{Suffix: 500}, size - 500, size - 1, nil},
		{"SuffixLongerThanObject", "ranged", peers.ByteRange{Suffix: size + 7}, 0, size - 1, nil},
		{"StartAtEnd", "ranged", peers.ByteRange{First: size, Last: -1}, 0, 0, peers.ErrRangeNotSatisfiable},
		{"StartPastEnd", "ranged", peers.ByteRange{First: size + 10, Last: size + 20}, 0, 0, peers.ErrRangeNotSatisfiable},
		{"EmptyObject", "empty", peers.ByteRange{First: 0, Last: -1}, 0, 0, peers.ErrRangeNotSatisfiable},
		{"EndBeforeStart", "ranged", peers.ByteRange{First: 10, Last: 5}, 0, 0, peers.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, got, err := s.get(t.Context(), ctr, tc.object, &tc.rng)
			if tc.want != nil {
				wantErr(t, fmt.Sprintf("GetObject %+v", tc.rng), err, tc.want)
				if errors.Is(tc.want, peers.ErrRangeNotSatisfiable) && info.Name != tc.object {
					t.Fatalf("GetObject %+v past the end = info %+v; want the object's info beside ErrRangeNotSatisfiable", tc.rng, info)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetObject %+v: %v", tc.rng, err)
			}
			if info.Size != size || info.ETag != md5hex(data) {
				t.Fatalf("GetObject %+v info = size %d ETag %s; want the whole object's, %d %s", tc.rng, info.Size, info.ETag, size, md5hex(data))
			}
			if want := data[tc.first : tc.last+1]; !bytes.Equal(got, want) {
				t.Fatalf("GetObject %+v read %d bytes; want bytes %d-%d (%d), first difference at %d", tc.rng, len(got), tc.first, tc.last, len(want), firstDiff(got, want))
			}
		})
	}
}

func (s *objSuite) testMetadata(t *testing.T) {
	ctx := t.Context()
	ctr := s.container(t)
	const name = "meta/object"
	meta := map[string]string{"color": "blue", "unicode": "日本語", "empty": ""}
	s.put(t, ctr, name, []byte("body"), peers.ObjectSpec{Size: 4, ContentType: "text/x-peertest", Metadata: meta})
	check := func(t *testing.T, what, ctype string, meta map[string]string) peers.ObjectInfo {
		t.Helper()
		head, err := s.o.HeadObject(ctx, ctr, name)
		if err != nil {
			t.Fatalf("%s: HeadObject: %v", what, err)
		}
		got, _, err := s.get(ctx, ctr, name, nil)
		if err != nil {
			t.Fatalf("%s: GetObject: %v", what, err)
		}
		for _, info := range []peers.ObjectInfo{head, got} {
			if info.ContentType != ctype || !maps.Equal(info.Metadata, meta) {
				t.Fatalf("%s: content type %q, metadata %v; want %q, exactly %v", what, info.ContentType, info.Metadata, ctype, meta)
			}
		}
		return head
	}
	before := check(t, "after PutObject", "text/x-peertest", meta)

	updated := map[string]string{"color": "red", "shape": "round"}
	info, err := s.o.UpdateObject(ctx, ctr, name, peers.ObjectUpdate{Metadata: updated})
	if err != nil {
		t.Fatalf("UpdateObject: %v", err)
	}
	if !maps.Equal(info.Metadata, updated) || info.ContentType != "text/x-peertest" || info.ETag != before.ETag || info.Size != 4 {
		t.Fatalf("UpdateObject = %+v; want metadata exactly %v, the content type and bytes kept", info, updated)
	}
	after := check(t, "after UpdateObject (metadata replaced, content type kept)", "text/x-peertest", updated)
	if after.LastModified.Before(before.LastModified) {
		t.Fatalf("LastModified went back from %v to %v", before.LastModified, after.LastModified)
	}
	if _, err := s.o.UpdateObject(ctx, ctr, name, peers.ObjectUpdate{ContentType: "application/x-other"}); err != nil {
		t.Fatalf("UpdateObject of the content type: %v", err)
	}
	check(t, "after UpdateObject of the content type with no metadata", "application/x-other", nil)
	s.wantObject(t, "after UpdateObject", ctr, name, []byte("body"))

	_, err = s.o.UpdateObject(ctx, ctr, "meta/missing", peers.ObjectUpdate{Metadata: updated})
	wantErr(t, "UpdateObject of a missing object", err, peers.ErrNotFound)
	_, err = s.o.UpdateObject(ctx, ctr, name, peers.ObjectUpdate{Metadata: map[string]string{"": "no key"}})
	wantErr(t, "UpdateObject with an empty metadata key", err, peers.ErrInvalid)
}

func (s *objSuite) testExpiry(t *testing.T) {
	ctx := t.Context()
	ctr := s.container(t)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	future := time.Now().Add(time.Hour).Truncate(time.Second)

	s.put(t, ctr, "expiry/live", []byte("live"), peers.ObjectSpec{Size: 4})
	s.put(t, ctr, "expiry/later", []byte("later"), peers.ObjectSpec{Size: 5, DeleteAt: future})
	head, err := s.o.HeadObject(ctx, ctr, "expiry/later")
	if err != nil || !head.DeleteAt.Equal(future) {
		t.Fatalf("HeadObject of an object expiring at %v = %+v, %v; want its DeleteAt", future, head, err)
	}
	if _, err := s.o.PutObject(ctx, ctr, "expiry/put-expired", strings.NewReader("gone"), peers.ObjectSpec{Size: 4, DeleteAt: past}); err != nil {
		t.Fatalf("PutObject with a DeleteAt in the past: %v", err)
	}
	s.put(t, ctr, "expiry/updated", []byte("soon gone"), peers.ObjectSpec{Size: 9})
	if _, err := s.o.UpdateObject(ctx, ctr, "expiry/updated", peers.ObjectUpdate{DeleteAt: past}); err != nil {
		t.Fatalf("UpdateObject to a DeleteAt in the past: %v", err)
	}
	for _, name := range []string{"expiry/put-expired", "expiry/updated"} {
		t.Run(strings.TrimPrefix(name, "expiry/"), func(t *testing.T) {
			_, _, err := s.get(ctx, ctr, name, nil)
			wantErr(t, "GetObject of an expired object", err, peers.ErrNotFound)
			_, err = s.o.HeadObject(ctx, ctr, name)
			wantErr(t, "HeadObject of an expired object", err, peers.ErrNotFound)
			_, err = s.o.UpdateObject(ctx, ctr, name, peers.ObjectUpdate{})
			wantErr(t, "UpdateObject of an expired object", err, peers.ErrNotFound)
		})
	}
	got, err := s.o.ListObjects(ctx, ctr, peers.ObjectListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if names := entryNames(got); !slices.Equal(names, []string{"expiry/later", "expiry/live"}) {
		t.Fatalf("ListObjects = %q; want only the live objects", names)
	}
	if st, err := s.o.ContainerStats(ctx, ctr); err != nil || st != (peers.ContainerStats{Objects: 2, Bytes: 9}) {
		t.Fatalf("ContainerStats = %+v, %v; want the 2 live objects of 9 bytes", st, err)
	}
	// An expired name takes a new object.
	s.put(t, ctr, "expiry/updated", []byte("back"), peers.ObjectSpec{Size: 4})
	s.wantObject(t, "an object put over an expired one", ctr, "expiry/updated", []byte("back"))
	// Clearing the expiry: a zero DeleteAt in an update.
	if info, err := s.o.UpdateObject(ctx, ctr, "expiry/later", peers.ObjectUpdate{}); err != nil || !info.DeleteAt.IsZero() {
		t.Fatalf("UpdateObject without DeleteAt = %+v, %v; want the expiry dropped", info, err)
	}
}

func entryNames(es []peers.ObjectEntry) []string {
	return ids(es, func(e peers.ObjectEntry) string {
		if e.Subdir != "" {
			return e.Subdir
		}
		return e.Name
	})
}

// listingNames are the objects the listing test stores: nested
// pseudo-directories, unicode (sorted bytewise), names ending in the
// delimiter, a different delimiter, neighbours of '/' in byte order.
var listingNames = []string{
	"a", "a.txt", "a-b", "a/", "a/1", "a/2", "a/b/c", "a/b/d", "a/bb", "a0",
	"b/x", "b/y/z", "b|p|q", "b|r", "c", "d/e/f/g",
	"é", "é/x", "ü/日本", "日本/語", "日本語", "z", "z/", "z//", "z//a",
}

func (s *objSuite) testListing(t *testing.T) {
	ctr := s.container(t)
	var wg sync.WaitGroup
	errs := make([]error, len(listingNames))
	for i, name := range listingNames {
		wg.Go(func() {
			_, errs[i] = s.o.PutObject(t.Context(), ctr, name, strings.NewReader(name), peers.ObjectSpec{Size: int64(len(name))})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	sorted := slices.Clone(listingNames)
	slices.Sort(sorted) // Go compares strings bytewise: UTF-8 order

	var cases []peers.ObjectListOptions
	for _, prefix := range []string{"", "a", "a/", "a/b", "b", "z/", "日本", "é", "nothing"} {
		for _, delim := range []string{"", "/", "|"} {
			for _, reverse := range []bool{false, true} {
				cases = append(cases, peers.ObjectListOptions{Prefix: prefix, Delimiter: delim, Reverse: reverse})
			}
		}
	}
	for _, marker := range []string{"a/", "a/b", "b", "é", "zz", ""} {
		for _, end := range []string{"", "a/2", "c", "日本"} {
			for _, reverse := range []bool{false, true} {
				for _, delim := range []string{"", "/"} {
					cases = append(cases, peers.ObjectListOptions{Marker: marker, EndMarker: end, Delimiter: delim, Reverse: reverse})
				}
			}
		}
	}
	for _, limit := range []int{1, 3, 1000} {
		cases = append(cases, peers.ObjectListOptions{Limit: limit}, peers.ObjectListOptions{Limit: limit, Delimiter: "/", Marker: "a", Reverse: true})
	}
	for _, opts := range cases {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			got, err := s.o.ListObjects(t.Context(), ctr, opts)
			if err != nil {
				t.Fatalf("ListObjects: %v", err)
			}
			want := referenceListing(sorted, opts)
			if !slices.Equal(entryNames(got), want) {
				t.Fatalf("ListObjects %+v\n got %q\nwant %q", opts, entryNames(got), want)
			}
			for _, e := range got {
				if e.Subdir != "" {
					if e.Name != "" || e.Size != 0 {
						t.Fatalf("subdir entry %+v: want only Subdir set", e)
					}
					continue
				}
				if e.Size != int64(len(e.Name)) || e.ETag != md5hex([]byte(e.Name)) || e.LastModified.IsZero() {
					t.Fatalf("entry %+v: want size %d, ETag %s, a LastModified", e, len(e.Name), md5hex([]byte(e.Name)))
				}
			}
		})
	}
	// Paging by the last entry's name (or subdir) as the marker walks the
	// same listing as one call.
	for _, opts := range []peers.ObjectListOptions{{}, {Delimiter: "/"}, {Delimiter: "/", Reverse: true}, {Prefix: "a/", Delimiter: "/"}, {Reverse: true}} {
		t.Run(fmt.Sprintf("Paged%+v", opts), func(t *testing.T) {
			var all []string
			page := opts
			page.Limit = 2
			for range len(sorted) + 1 {
				got, err := s.o.ListObjects(t.Context(), ctr, page)
				if err != nil {
					t.Fatalf("ListObjects %+v: %v", page, err)
				}
				if len(got) == 0 {
					break
				}
				names := entryNames(got)
				all = append(all, names...)
				page.Marker = names[len(names)-1]
			}
			if want := referenceListing(sorted, opts); !slices.Equal(all, want) {
				t.Fatalf("paging %+v by 2\n got %q\nwant %q", opts, all, want)
			}
		})
	}
	t.Run("BadLimit", func(t *testing.T) {
		for _, limit := range []int{-1, peers.MaxListLimit + 1} {
			_, err := s.o.ListObjects(t.Context(), ctr, peers.ObjectListOptions{Limit: limit})
			wantErr(t, fmt.Sprintf("ListObjects with limit %d", limit), err, peers.ErrInvalid)
		}
	})
}

// referenceListing is Swift's listing computed the plain way: filter the
// sorted names, roll up, drop repeats and a subdir equal to the marker.
func referenceListing(sorted []string, o peers.ObjectListOptions) []string {
	names := slices.Clone(sorted)
	if o.Reverse {
		slices.Reverse(names)
	}
	var out []string
	for _, n := range names {
		if !strings.HasPrefix(n, o.Prefix) {
			continue
		}
		after := func(a, b string) bool { // a comes after b in listing order
			if o.Reverse {
				return a < b
			}
			return a > b
		}
		if o.Marker != "" && !after(n, o.Marker) {
			continue
		}
		if o.EndMarker != "" && !after(o.EndMarker, n) {
			continue
		}
		entry := n
		if o.Delimiter != "" {
			if i := strings.Index(n[len(o.Prefix):], o.Delimiter); i >= 0 {
				entry = n[:len(o.Prefix)+i+len(o.Delimiter)]
				if entry == o.Marker || (len(out) > 0 && out[len(out)-1] == entry) {
					continue
				}
			}
		}
		out = append(out, entry)
	}
	if o.Limit > 0 && len(out) > o.Limit {
		out = out[:o.Limit]
	}
	return out
}

func (s *objSuite) testStats(t *testing.T) {
	ctx := t.Context()
	ctr := s.container(t)
	want := peers.ContainerStats{}
	for i, n := range []int{0, 1, 1000, 65537} {
		s.put(t, ctr, fmt.Sprintf("stats/%d", i), imageBytes(n, uint64(i)), peers.ObjectSpec{Size: int64(n)})
		want.Objects++
		want.Bytes += int64(n)
	}
	// Replacing counts the new size once.
	s.put(t, ctr, "stats/2", imageBytes(10, 99), peers.ObjectSpec{Size: 10})
	want.Bytes += 10 - 1000
	if st, err := s.o.ContainerStats(ctx, ctr); err != nil || st != want {
		t.Fatalf("ContainerStats = %+v, %v; want %+v", st, err, want)
	}
	if err := s.o.DeleteObject(ctx, ctr, "stats/3"); err != nil {
		t.Fatal(err)
	}
	want.Objects--
	want.Bytes -= 65537
	if st, err := s.o.ContainerStats(ctx, ctr); err != nil || st != want {
		t.Fatalf("ContainerStats after a delete = %+v, %v; want %+v", st, err, want)
	}
}

// testConcurrentPuts races uploads to one name: the object is whole, one
// of them, and a reader during the race never sees a mix.
func (s *objSuite) testConcurrentPuts(t *testing.T) {
	ctr := s.container(t)
	const name = "race"
	versions := make([][]byte, 6)
	byETag := map[string][]byte{}
	for i := range versions {
		versions[i] = imageBytes(64<<10+i, uint64(100+i))
		byETag[md5hex(versions[i])] = versions[i]
	}
	s.put(t, ctr, name, versions[0], peers.ObjectSpec{Size: -1})
	var wg sync.WaitGroup
	errs := make([]error, len(versions))
	for i, v := range versions {
		wg.Go(func() {
			_, errs[i] = s.o.PutObject(t.Context(), ctr, name, bytes.NewReader(v), peers.ObjectSpec{Size: int64(len(v))})
		})
	}
	for range 5 {
		info, got, err := s.get(t.Context(), ctr, name, nil)
		if err != nil {
			t.Errorf("GetObject during the race: %v", err)
			continue
		}
		if want, ok := byETag[info.ETag]; !ok || !bytes.Equal(got, want) {
			t.Errorf("GetObject during the race read %d bytes with ETag %s: not one whole version", len(got), info.ETag)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	info, got, err := s.get(t.Context(), ctr, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want, ok := byETag[info.ETag]; !ok || !bytes.Equal(got, want) {
		t.Fatalf("after the race: %d bytes with ETag %s, not one whole version", len(got), info.ETag)
	}
}

func (s *objSuite) testObjectsContextCanceled(t *testing.T) {
	ctr := s.container(t)
	data := imageBytes(4<<20, 21)
	s.put(t, ctr, "ctx", data, peers.ObjectSpec{Size: int64(len(data))})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateContainer", func() error { return s.o.CreateContainer(done, s.name("ctr")) }},
		{"ContainerStats", func() error { _, err := s.o.ContainerStats(done, ctr); return err }},
		{"ListObjects", func() error { _, err := s.o.ListObjects(done, ctr, peers.ObjectListOptions{}); return err }},
		{"PutObject", func() error {
			_, err := s.o.PutObject(done, ctr, "ctx", bytes.NewReader(data[:10]), peers.ObjectSpec{Size: 10})
			return err
		}},
		{"GetObject", func() error { _, _, err := s.get(done, ctr, "ctx", nil); return err }},
		{"HeadObject", func() error { _, err := s.o.HeadObject(done, ctr, "ctx"); return err }},
		{"UpdateObject", func() error { _, err := s.o.UpdateObject(done, ctr, "ctx", peers.ObjectUpdate{}); return err }},
		{"DeleteObject", func() error { return s.o.DeleteObject(done, ctr, "ctx") }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" with a cancelled context", tc.call(), context.Canceled)
		})
	}
	t.Run("MidUpload", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelAfter{r: bytes.NewReader(imageBytes(4<<20, 22)), n: 1 << 20, cancel: cancel}
		_, err := s.o.PutObject(ctx, ctr, "ctx", r, peers.ObjectSpec{Size: 4 << 20})
		if err == nil {
			t.Fatal("PutObject whose context ends mid-upload returned no error")
		}
		s.wantObject(t, "after a PutObject cancelled mid-way", ctr, "ctx", data)
	})
	t.Run("MidDownload", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		_, rc, err := s.o.GetObject(ctx, ctr, "ctx", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if n, err := io.Copy(io.Discard, rc); err == nil {
			t.Fatalf("reading on after the context ended: %d more bytes and no error", n)
		}
	})
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}
