package openstack_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// swiftAPI is the fake API with an object store in its catalog, and the
// driver connected to it, as the pool holds it.
func swiftAPI(t *testing.T) (*apiServer, peers.Objects) {
	t.Helper()
	s := newAPIServer(t, 79)
	s.objectStore = true
	c := connectAPI(t, s, fastRetry)
	o, ok := c.Peer().(peers.Objects)
	if !ok {
		t.Fatalf("Peer() of a cloud with an object store is %T, without peers.Objects", c.Peer())
	}
	return s, o
}

// TestObjectsAbility: the cloud has peers.Objects exactly when its catalog
// lists an object store, so the broker's type assertion tells.
func TestObjectsAbility(t *testing.T) {
	for _, withSwift := range []bool{false, true} {
		t.Run(fmt.Sprintf("object-store=%v", withSwift), func(t *testing.T) {
			s := newAPIServer(t, 79)
			s.objectStore = withSwift
			s.script("GET", "/compute/v2.1/limits", reply{status: 200, body: `{"limits": {"absolute": {"maxTotalCores": 10, "totalCoresUsed": 1, "maxTotalRAMSize": 4096, "totalRAMUsed": 64, "maxTotalInstances": 5, "totalInstancesUsed": 1}}}`})
			s.script("HEAD", swiftPath+"/", reply{status: 204, header: map[string]string{"X-Account-Bytes-Used": "1234", "X-Account-Meta-Quota-Bytes": "5000"}})
			c := connectAPI(t, s, fastRetry)
			_, ok := c.Peer().(peers.Objects)
			if ok != withSwift || c.HasObjectStore() != withSwift {
				t.Fatalf("with an object store %v: Peer() is %T (peers.Objects %v), HasObjectStore %v", withSwift, c.Peer(), ok, c.HasObjectStore())
			}
			if _, ok := peers.Cloud(c).(peers.Objects); ok {
				t.Fatal("*Cloud itself has peers.Objects; only Peer's cloud may")
			}
			capa, err := c.Capacity(t.Context())
			if err != nil {
				t.Fatalf("Capacity: %v", err)
			}
			want := registry.Resource{}
			if withSwift {
				want = registry.Resource{Total: 5000, Used: 1234} // the account's quota and usage
			}
			if capa.ObjectBytes != want {
				t.Fatalf("Capacity.ObjectBytes = %+v, want %+v", capa.ObjectBytes, want)
			}
		})
	}
}

// TestObjectErrors: Swift's statuses become the contract's sentinels.
func TestObjectErrors(t *testing.T) {
	const obj = swiftPath + "/ctr/obj"
	put := func(o peers.Objects) error {
		_, err := o.PutObject(t.Context(), "ctr", "obj", strings.NewReader("data"), peers.ObjectSpec{Size: 4})
		return err
	}
	head := func(o peers.Objects) error { _, err := o.HeadObject(t.Context(), "ctr", "obj"); return err }
	tests := []struct {
		name   string
		method string
		path   string
		status int
		call   func(o peers.Objects) error
		want   error
	}{
		{"missing object", "HEAD", obj, 404, head, peers.ErrNotFound},
		{"container not empty", "DELETE", swiftPath + "/ctr", 409, func(o peers.Objects) error { return o.DeleteContainer(t.Context(), "ctr") }, peers.ErrConflict},
		{"ETag mismatch", "PUT", obj, 422, put, peers.ErrInvalid},
		{"bad metadata", "PUT", obj, 400, put, peers.ErrInvalid},
		{"quota", "PUT", obj, 413, put, peers.ErrCapacity},
		{"disk full", "PUT", obj, 507, put, peers.ErrCapacity},
		{"forbidden", "HEAD", obj, 403, head, peers.ErrUnauthorized},
		{"proxy down", "HEAD", obj, 503, head, peers.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := swiftAPI(t)
			s.script(tc.method, tc.path, reply{status: tc.status, body: "<html><h1>Swift said no</h1></html>"})
			if err := tc.call(o); !errors.Is(err, tc.want) {
				t.Fatalf("%s answered %d: error %v, want %v", tc.method, tc.status, err, tc.want)
			}
		})
	}
}

// TestObjectRanges: the Range header sent, and Swift's answers (206, 416
// with or without Content-Range, 200 to a ranged GET) turned into the
// contract's bytes, info and errors.
func TestObjectRanges(t *testing.T) {
	const obj = swiftPath + "/ctr/obj"
	data := "0123456789"
	etag := fmt.Sprintf("%x", md5.Sum([]byte(data)))
	base := map[string]string{"Etag": etag, "Last-Modified": "Mon, 07 Dec 2026 06:14:59 GMT", "X-Object-Meta-Color": "blue"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name      string
		rng       peers.ByteRange
		replies   []reply
		head      bool // a HEAD answers for the info
		wantRange string
		want      string
		wantErr   error
	}{
		{"partial", peers.ByteRange{First: 2, Last: 4}, []reply{{status: 206, body: "234", header: with(map[string]string{"Content-Range": "bytes 2-4/10"})}},
			false, "bytes=2-4", "234", nil},
		{"suffix", peers.ByteRange{Suffix: 3}, []reply{{status: 206, body: "789", header: with(map[string]string{"Content-Range": "bytes 7-9/10"})}},
			false, "bytes=-3", "789", nil},
		{"open end", peers.ByteRange{First: 8, Last: -1}, []reply{{status: 206, body: "89", header: with(map[string]string{"Content-Range": "bytes 8-9/10"})}},
			false, "bytes=8-", "89", nil},
		{"416 with Content-Range", peers.ByteRange{First: 10, Last: -1}, []reply{{status: 416, body: "<html>no</html>", header: with(map[string]string{"Content-Range": "bytes */10"})}},
			false, "bytes=10-", "", peers.ErrRangeNotSatisfiable},
		{"416 without Content-Range", peers.ByteRange{First: 10, Last: -1}, []reply{{status: 416, body: "<html>no</html>"}},
			true, "bytes=10-", "", peers.ErrRangeNotSatisfiable},
		{"200 to a ranged GET", peers.ByteRange{First: 3, Last: 5}, []reply{{status: 200, body: data, header: base}},
			false, "bytes=3-5", "345", nil},
		{"200 to a range past the end", peers.ByteRange{Suffix: 0, First: 20, Last: -1}, []reply{{status: 200, body: data, header: base}},
			false, "bytes=20-", "", peers.ErrRangeNotSatisfiable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := swiftAPI(t)
			s.script("GET", obj, tc.replies...)
			if tc.head {
				s.script("HEAD", obj, reply{status: 200, header: with(map[string]string{"Content-Length": "10"})})
			}
			info, rc, err := o.GetObject(t.Context(), "ctr", "obj", &tc.rng)
			if got := s.lastHeader("GET", obj, "Range"); got != tc.wantRange {
				t.Fatalf("Range header %q, want %q", got, tc.wantRange)
			}
			if info.Size != 10 || info.ETag != etag || info.Metadata["color"] != "blue" || info.LastModified.IsZero() {
				t.Fatalf("info = %+v; want the whole object's (size 10, ETag, metadata, Last-Modified)", info)
			}
			if heads := s.count("HEAD", obj); (heads > 0) != tc.head {
				t.Fatalf("%d HEADs; want one only when the 416 lacks Content-Range", heads)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || rc != nil {
					t.Fatalf("GetObject = %v, %v; want %v and no body", rc, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetObject: %v", err)
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || string(got) != tc.want {
				t.Fatalf("read %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("malformed range: no request", func(t *testing.T) {
		s, o := swiftAPI(t)
		_, _, err := o.GetObject(t.Context(), "ctr", "obj", &peers.ByteRange{First: 5, Last: 2})
		if !errors.Is(err, peers.ErrInvalid) || s.count("GET", obj) != 0 {
			t.Fatalf("GetObject of bytes 5-2 = %v after %d GETs; want ErrInvalid and none", err, s.count("GET", obj))
		}
	})
}

// TestObjectDownloadChecksum: a whole-object read whose bytes do not have
// the object's ETag fails its last read.
func TestObjectDownloadChecksum(t *testing.T) {
	const obj = swiftPath + "/ctr/obj"
	s, o := swiftAPI(t)
	s.script("GET", obj, reply{status: 200, body: "tampered", header: map[string]string{"Etag": fmt.Sprintf("%x", md5.Sum([]byte("original")))}})
	_, rc, err := o.GetObject(t.Context(), "ctr", "obj", nil)
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); !errors.Is(err, peers.ErrUnavailable) {
		t.Fatalf("reading bytes that do not match the ETag: %q, %v; want ErrUnavailable", got, err)
	}
}

// TestObjectPutRequest: what a PUT sends (Content-Length or chunked, the
// ETag, encoded metadata keys, X-Delete-At) and that a refused body never
// completes the request.
func TestObjectPutRequest(t *testing.T) {
	const obj = swiftPath + "/ctr/obj"
	data := []byte("object bytes")
	sum := fmt.Sprintf("%x", md5.Sum(data))
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name     string
		size     int64
		etag     string
		wantLen  string
		wantEnc  string
		wantETag string
	}{
		{"known size and ETag", int64(len(data)), sum, fmt.Sprint(len(data)), "", sum},
		{"unknown size", -1, "", "", "chunked", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := swiftAPI(t)
			s.script("PUT", obj, reply{status: 201, header: map[string]string{"Etag": sum, "Last-Modified": "Mon, 07 Dec 2026 06:14:59 GMT"}})
			info, err := o.PutObject(t.Context(), "ctr", "obj", bytes.NewReader(data), peers.ObjectSpec{Size: tc.size, ETag: tc.etag,
				Metadata: map[string]string{"foo_bar": "x"}, DeleteAt: expiry})
			if err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			if info.Size != int64(len(data)) || info.ETag != sum || !info.DeleteAt.Equal(expiry) || info.Metadata["foo_bar"] != "x" {
				t.Fatalf("PutObject = %+v", info)
			}
			for key, want := range map[string]string{
				"Content-Length": tc.wantLen, "ETag": tc.wantETag, "X-Object-Meta-Foo%5fbar": "x",
				"X-Delete-At": fmt.Sprint(expiry.Unix()), "Content-Type": "application/octet-stream",
			} {
				if got := s.lastHeader("PUT", obj, key); got != want {
					t.Errorf("PUT header %s = %q, want %q", key, got, want)
				}
			}
		})
	}
	t.Run("stored bytes differ", func(t *testing.T) {
		s, o := swiftAPI(t)
		s.script("PUT", obj, reply{status: 201, header: map[string]string{"Etag": fmt.Sprintf("%x", md5.Sum([]byte("other")))}})
		s.script("DELETE", obj, reply{status: 204})
		_, err := o.PutObject(t.Context(), "ctr", "obj", bytes.NewReader(data), peers.ObjectSpec{Size: -1})
		if !errors.Is(err, peers.ErrUnavailable) || s.count("DELETE", obj) != 1 {
			t.Fatalf("PutObject whose stored ETag differs: %v, %d DELETEs; want ErrUnavailable and the object deleted", err, s.count("DELETE", obj))
		}
	})
}

// TestObjectMetadataKeysTestcloud: keys Swift's WSGI stack would change
// ('_' to '-') or refuse come back from a real Swift as they were sent.
func TestObjectMetadataKeysTestcloud(t *testing.T) {
	c := connect(t, "")
	o, ok := c.Peer().(peers.Objects)
	if !ok {
		t.Skip("the testcloud's catalog has no object store (ENABLE_SWIFT=0)")
	}
	ctx := t.Context()
	ctr := fmt.Sprintf("osobj-keys-%d", time.Now().UnixNano())
	if err := o.CreateContainer(ctx, ctr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = o.DeleteObject(context.Background(), ctr, "obj")
		_ = o.DeleteContainer(context.Background(), ctr)
	})
	meta := map[string]string{"foo_bar": "u", "foo-bar": "d", "a.b": "dot", "100%": "pct", "日本": "語", "plain": ""}
	if _, err := o.PutObject(ctx, ctr, "obj", strings.NewReader("x"), peers.ObjectSpec{Size: 1, Metadata: meta}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	info, err := o.HeadObject(ctx, ctr, "obj")
	if err != nil || !maps.Equal(info.Metadata, meta) {
		t.Fatalf("HeadObject = %v, %v; want metadata exactly %v", info.Metadata, err, meta)
	}
	if info.ContentType != "application/octet-stream" {
		t.Fatalf("content type %q of an object put without one; want application/octet-stream, as the local cloud", info.ContentType)
	}
}

// TestObjectListLimitAboveCluster: a cluster whose listing limit is below
// the contract's refuses a larger limit (412); the driver then lists a
// page of the cluster's own size.
func TestObjectListLimitAboveCluster(t *testing.T) {
	s, o := swiftAPI(t)
	s.script("GET", swiftPath+"/ctr",
		reply{status: 412, body: "Maximum limit is 1000"},
		reply{status: 200, body: `[{"name": "a", "bytes": 1, "hash": "0cc175b9c0f1b6a831c399e269772661", "content_type": "text/plain", "last_modified": "2026-12-07T06:15:03.029380"}, {"subdir": "b/"}]`})
	got, err := o.ListObjects(t.Context(), "ctr", peers.ObjectListOptions{Limit: 5000, Delimiter: "/"})
	if err != nil {
		t.Fatalf("ListObjects: %v", err)
	}
	want := time.Date(2026, 12, 7, 6, 15, 4, 0, time.UTC) // Swift's Last-Modified rounds up
	if len(got) != 2 || got[0].Name != "a" || got[0].Size != 1 || !got[0].LastModified.Equal(want) || got[1].Subdir != "b/" || got[1].Name != "" {
		t.Fatalf("ListObjects = %+v; want a (last modified %v) and subdir b/", got, want)
	}
	if n := s.count("GET", swiftPath+"/ctr"); n != 2 {
		t.Fatalf("%d listing requests, want 2 (refused, then without the limit)", n)
	}
}
