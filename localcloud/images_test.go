package localcloud_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

// imageFiles lists the image store's directory.
func imageFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func queuedImage(t *testing.T, c *localcloud.Cloud) peers.Image {
	t.Helper()
	img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "img", Project: "p", DiskFormat: "raw", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// qcow2Image is a minimal qcow2 v3 image: a valid header, then zeros.
func qcow2Image(n int) []byte {
	b := make([]byte, max(n, 104))
	copy(b, "QFI\xfb")
	binary.BigEndian.PutUint32(b[4:], 3)      // version
	binary.BigEndian.PutUint32(b[20:], 16)    // cluster_bits
	binary.BigEndian.PutUint64(b[24:], 1<<30) // virtual size
	binary.BigEndian.PutUint32(b[96:], 4)     // refcount_order
	binary.BigEndian.PutUint32(b[100:], 104)  // header_length
	return b
}

// streamEnd is how a lifecycle case's upload stream ends.
type streamEnd int

const (
	endEOF    streamEnd = iota // the client sends everything
	endBreak                   // the client's stream fails
	endCancel                  // the caller's context is cancelled
	endDelete                  // the image is deleted mid-upload
)

// TestImageLifecycle drives an image through every status transition:
// queued -> saving -> active, killed or deleted; then active/killed ->
// deleted (at once, or through pending_delete), with protection refusing
// the delete until lifted. The upload is fed through a pipe so the test
// sees the image saving mid-stream.
func TestImageLifecycle(t *testing.T) {
	boom := errors.New("client went away")
	payload := bytes.Repeat([]byte("cloudmux"), 128<<10) // 1 MiB, raw
	sum := md5.Sum(payload)
	sumHex := hex.EncodeToString(sum[:])
	otherSum := md5.Sum([]byte("something else"))
	tests := []struct {
		name string
		spec peers.ImageSpec // Name and Project are filled in; formats default to raw/bare
		data []byte
		size int64 // -1 unknown; anything else is sent as is
		end  streamEnd
		// wantErr is what UploadImage returns (nil: success); wantMsg a part
		// of its message.
		wantErr error
		wantMsg []string
		want    peers.ImageStatus // after the upload
		// deleteDelay > 0 deletes through pending_delete; 0 at once.
		deleteDelay time.Duration
	}{
		{name: "ActiveKnownSize", data: payload, size: int64(len(payload)), want: peers.ImageActive},
		{name: "ActiveUnknownSize", data: payload, size: -1, want: peers.ImageActive},
		{name: "ActiveQcow2", spec: peers.ImageSpec{DiskFormat: "qcow2"}, data: qcow2Image(1 << 20), size: 1 << 20, want: peers.ImageActive},
		{name: "ActiveChecksumMatches", spec: peers.ImageSpec{Checksum: strings.ToUpper(sumHex)}, data: payload, size: -1, want: peers.ImageActive},
		{name: "ActiveThenDelayedDelete", data: payload, size: -1, want: peers.ImageActive, deleteDelay: 30 * time.Millisecond},
		{name: "ActiveProtected", spec: peers.ImageSpec{Protected: true}, data: payload, size: -1, want: peers.ImageActive},
		{name: "KilledReaderBreaks", data: payload, size: int64(len(payload)), end: endBreak, wantErr: boom, want: peers.ImageKilled},
		{name: "KilledContextCancelled", data: payload, size: -1, end: endCancel, wantErr: context.Canceled, want: peers.ImageKilled},
		{name: "KilledShorterThanAnnounced", data: payload[:100], size: 101, wantErr: peers.ErrInvalid, wantMsg: []string{"ended after 100 of the 101 bytes"}, want: peers.ImageKilled},
		{name: "KilledLongerThanAnnounced", data: payload[:102], size: 101, wantErr: peers.ErrInvalid, wantMsg: []string{"longer than the 101 bytes"}, want: peers.ImageKilled},
		{
			name: "KilledChecksumMismatch", spec: peers.ImageSpec{Checksum: hex.EncodeToString(otherSum[:])}, data: payload, size: -1,
			wantErr: peers.ErrInvalid, wantMsg: []string{"checksum mismatch", sumHex, hex.EncodeToString(otherSum[:])}, want: peers.ImageKilled,
		},
		{
			name: "KilledDeclaredQcow2ButRaw", spec: peers.ImageSpec{DiskFormat: "qcow2"}, data: payload, size: -1,
			wantErr: peers.ErrInvalid, wantMsg: []string{"disk_format qcow2", "not start with a qcow2 header"}, want: peers.ImageKilled,
		},
		{
			name: "KilledDeclaredRawButQcow2", data: qcow2Image(1 << 20), size: -1,
			wantErr: peers.ErrInvalid, wantMsg: []string{"disk_format raw", "is a qcow2 image"}, want: peers.ImageKilled,
		},
		{name: "KilledProtected", spec: peers.ImageSpec{Protected: true}, data: payload, size: -1, end: endBreak, wantErr: boom, want: peers.ImageKilled},
		{name: "DeletedWhileSaving", data: payload, size: -1, end: endDelete, wantErr: peers.ErrNotFound, want: peers.ImageDeleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneHost(t)
			cfg.ImageDeleteDelay = tc.deleteDelay
			c, _ := newCloud(t, cfg)
			spec := tc.spec
			spec.Name, spec.Project = "img", "p"
			spec.DiskFormat = cmp.Or(spec.DiskFormat, "raw")
			spec.ContainerFormat = cmp.Or(spec.ContainerFormat, "bare")
			img, err := c.CreateImage(t.Context(), spec)
			if err != nil {
				t.Fatal(err)
			}
			status := func() peers.ImageStatus {
				t.Helper()
				got, err := c.GetImage(t.Context(), img.ID)
				if errors.Is(err, peers.ErrNotFound) {
					tomb, err := c.DeletedImage(t.Context(), img.ID)
					if err != nil {
						t.Fatal(err)
					}
					return tomb.Status
				}
				if err != nil {
					t.Fatal(err)
				}
				return got.Status
			}
			if st := status(); st != peers.ImageQueued || img.Status != peers.ImageQueued {
				t.Fatalf("new image is %s (CreateImage said %s), want queued", st, img.Status)
			}

			// queued -> saving: the first chunk is in, the rest still to come.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			pr, pw := io.Pipe()
			uploaded := make(chan error, 1)
			go func() { uploaded <- c.UploadImage(ctx, img.ID, pr, tc.size) }()
			first := min(len(tc.data)/2, 4096) // never all: the upload must still wait for more
			if _, err := pw.Write(tc.data[:first]); err != nil {
				t.Fatalf("writing the first chunk: %v", err)
			}
			if st := status(); st != peers.ImageSaving {
				t.Fatalf("image mid-upload is %s, want saving", st)
			}
			if err := c.UploadImage(t.Context(), img.ID, bytes.NewReader(payload), -1); !errors.Is(err, peers.ErrConflict) {
				t.Fatalf("a second UploadImage while saving = %v, want ErrConflict", err)
			}
			if _, err := c.DownloadImage(t.Context(), img.ID); !errors.Is(err, peers.ErrConflict) {
				t.Fatalf("DownloadImage while saving = %v, want ErrConflict", err)
			}
			sent := make(chan int, 1)
			go func() {
				n, err := pw.Write(tc.data[first:])
				n += first
				switch {
				case err != nil: // the upload stopped reading
				case tc.end == endBreak:
					_ = pw.CloseWithError(boom)
				case tc.end == endCancel:
					cancel()
					_ = pw.Close()
				case tc.end == endDelete:
					if err := c.DeleteImage(context.Background(), img.ID); err != nil {
						t.Errorf("DeleteImage mid-upload: %v", err)
					}
					_ = pw.Close()
				default:
					_ = pw.Close()
				}
				sent <- n
			}()
			err = <-uploaded
			_ = pr.Close() // unblocks the writer if the upload stopped early
			n := <-sent

			// saving -> active, killed or deleted.
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("UploadImage: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("UploadImage = %v, want an error matching %v", err, tc.wantErr)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("UploadImage error %q does not say %q", err, m)
				}
			}
			if st := status(); st != tc.want {
				t.Fatalf("image after the upload is %s, want %s", st, tc.want)
			}
			files := imageFiles(t, cfg.DataDir)
			got, _ := c.GetImage(t.Context(), img.ID)
			switch tc.want {
			case peers.ImageActive:
				h := sha512.Sum512(tc.data)
				m := md5.Sum(tc.data)
				if got.Size != int64(len(tc.data)) || got.Checksum != hex.EncodeToString(m[:]) ||
					got.OSHashAlgo != "sha512" || got.OSHashValue != hex.EncodeToString(h[:]) {
					t.Fatalf("active image = %+v\nwant size %d, checksum %x, sha512 %x", got, len(tc.data), m, h)
				}
				if !slices.Equal(files, []string{img.ID}) {
					t.Fatalf("image store holds %v, want just %s", files, img.ID)
				}
				rc, err := c.DownloadImage(t.Context(), img.ID)
				if err != nil {
					t.Fatal(err)
				}
				back, err := io.ReadAll(rc)
				_ = rc.Close()
				if err != nil || !bytes.Equal(back, tc.data) {
					t.Fatalf("DownloadImage gave %d bytes, %v; want the %d uploaded", len(back), err, len(tc.data))
				}
			case peers.ImageKilled:
				if got.Size != 0 || got.Checksum != "" || got.OSHashValue != "" {
					t.Fatalf("killed image = %+v, want no size nor checksum", got)
				}
				if len(files) != 0 {
					t.Fatalf("image store after a failed upload holds %v, want nothing (no partial file)", files)
				}
				if tc.end == endEOF && n >= len(tc.data) && len(tc.data) > 1<<19 && slices.Contains(tc.wantMsg, "disk_format "+spec.DiskFormat) {
					t.Fatalf("a format refusal read all %d bytes; want it to stop after the head", n)
				}
			case peers.ImageDeleted:
				if len(files) != 0 {
					t.Fatalf("image store after a delete mid-upload holds %v, want nothing", files)
				}
				return
			}
			if err := c.UploadImage(t.Context(), img.ID, bytes.NewReader(payload), -1); !errors.Is(err, peers.ErrConflict) {
				t.Fatalf("UploadImage to a %s image = %v, want ErrConflict", tc.want, err)
			}

			// active/killed -> (pending_delete ->) deleted.
			if spec.Protected {
				if err := c.DeleteImage(t.Context(), img.ID); !errors.Is(err, peers.ErrConflict) {
					t.Fatalf("DeleteImage of a protected %s image = %v, want ErrConflict", tc.want, err)
				}
				if st := status(); st != tc.want {
					t.Fatalf("a refused delete left the image %s, want %s", st, tc.want)
				}
				off := false
				if _, err := c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{Protected: &off}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.DeleteImage(t.Context(), img.ID); err != nil {
				t.Fatalf("DeleteImage: %v", err)
			}
			if _, err := c.GetImage(t.Context(), img.ID); !errors.Is(err, peers.ErrNotFound) {
				t.Fatalf("GetImage after DeleteImage = %v, want ErrNotFound", err)
			}
			if tc.deleteDelay > 0 {
				// The delay is short but a loaded machine can outrun it;
				// pending_delete is asserted in TestImageDelete with an hour.
				if st := status(); st != peers.ImagePendingDelete && st != peers.ImageDeleted {
					t.Fatalf("image right after a delayed delete is %s, want pending_delete", st)
				}
			}
			waitFor(t, "image "+img.ID+" deleted with its bytes", func() (bool, string) {
				st := status()
				files := imageFiles(t, cfg.DataDir)
				return st == peers.ImageDeleted && len(files) == 0, fmt.Sprintf("%s, files %v", st, files)
			})
		})
	}
}

func TestNewRemovesPartialUploads(t *testing.T) {
	cfg := oneHost(t)
	dir := filepath.Join(cfg.DataDir, "images")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".upload-dead-123"), []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	newCloud(t, cfg)
	if files := imageFiles(t, cfg.DataDir); len(files) != 0 {
		t.Fatalf("image store after New holds %v, want the partial upload removed", files)
	}
}

// activeImage uploads the placeholder disk into a new image.
func activeImage(t *testing.T, c *localcloud.Cloud) peers.Image {
	t.Helper()
	img := queuedImage(t, c)
	data := localcloud.PlaceholderDisk()
	if err := c.UploadImage(t.Context(), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImageDelete(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		// want is the tombstone's status right after DeleteImage, and
		// whether the bytes are still on disk then.
		want     peers.ImageStatus
		keptData bool
	}{
		{"Immediate", 0, peers.ImageDeleted, false},
		{"Delayed", time.Hour, peers.ImagePendingDelete, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneHost(t)
			cfg.ImageDeleteDelay = tc.delay
			c, _ := newCloud(t, cfg)
			img := activeImage(t, c)
			// A download open before the delete reads to the end.
			rc, err := c.DownloadImage(t.Context(), img.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if err := c.DeleteImage(t.Context(), img.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetImage(t.Context(), img.ID); !errors.Is(err, peers.ErrNotFound) {
				t.Fatalf("GetImage after delete = %v, want ErrNotFound (Glance v2 hides deleted images)", err)
			}
			tomb, err := c.DeletedImage(t.Context(), img.ID)
			if err != nil || tomb.Status != tc.want {
				t.Fatalf("DeletedImage = %+v, %v; want status %s", tomb, err, tc.want)
			}
			if has := slices.Contains(imageFiles(t, cfg.DataDir), img.ID); has != tc.keptData {
				t.Fatalf("image file present after delete: %v, want %v", has, tc.keptData)
			}
			if data, err := io.ReadAll(rc); err != nil || !bytes.Equal(data, localcloud.PlaceholderDisk()) {
				t.Fatalf("a download opened before the delete read %d bytes, %v; want the whole image", len(data), err)
			}
			_, err = c.CreateImage(t.Context(), peers.ImageSpec{ID: img.ID, Project: "p", DiskFormat: "raw", ContainerFormat: "bare"})
			if !errors.Is(err, peers.ErrConflict) {
				t.Fatalf("CreateImage reusing a deleted image's ID = %v, want ErrConflict", err)
			}
		})
	}
}

func TestDelayedDeleteCompletes(t *testing.T) {
	cfg := oneHost(t)
	cfg.ImageDeleteDelay = 10 * time.Millisecond
	c, _ := newCloud(t, cfg)
	img := activeImage(t, c)
	if err := c.DeleteImage(t.Context(), img.ID); err != nil {
		t.Fatal(err)
	}
	// pending_delete first (not asserted: the delay may already be over),
	// then deleted with the bytes gone.
	waitFor(t, "image "+img.ID+" scrubbed", func() (bool, string) {
		tomb, err := c.DeletedImage(context.Background(), img.ID)
		files := imageFiles(t, cfg.DataDir)
		return tomb.Status == peers.ImageDeleted && !slices.Contains(files, img.ID), string(tomb.Status) + " " + errString(err)
	})
}

func TestProtectedImageRefusesDelete(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "keep", Project: "p", DiskFormat: "raw", ContainerFormat: "bare", Protected: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteImage(t.Context(), img.ID); !errors.Is(err, peers.ErrConflict) {
		t.Fatalf("DeleteImage of a protected image = %v, want ErrConflict", err)
	}
	off := false
	if _, err := c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{Protected: &off}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteImage(t.Context(), img.ID); err != nil {
		t.Fatalf("DeleteImage after unprotecting: %v", err)
	}
}

func TestImageFieldValidation(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	tests := []struct {
		name  string
		spec  peers.ImageSpec
		field string
	}{
		{"MissingDiskFormat", peers.ImageSpec{ContainerFormat: "bare"}, "disk_format"},
		{"BadDiskFormat", peers.ImageSpec{DiskFormat: "img", ContainerFormat: "bare"}, "disk_format"},
		{"MissingContainerFormat", peers.ImageSpec{DiskFormat: "raw"}, "container_format"},
		{"BadContainerFormat", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "tar"}, "container_format"},
		{"ReservedProperty", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", Properties: map[string]string{"checksum": "x"}}, "checksum"},
		{"BadVisibility", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", Visibility: "everyone"}, "visibility"},
		{"EmptyTag", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", Tags: []string{"ok", ""}}, "tag"},
		{"LongTag", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", Tags: []string{strings.Repeat("t", 256)}}, "tag"},
		{"ChecksumNotMD5", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", Checksum: "abc"}, "checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Project = "p"
			_, err := c.CreateImage(t.Context(), tc.spec)
			if !errors.Is(err, peers.ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
				t.Fatalf("CreateImage = %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
}

func TestImageVisibility(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "v", Project: "p", DiskFormat: "raw", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Visibility != "shared" {
		t.Fatalf("default visibility = %q, want shared (Glance's default since Image API v2.5)", img.Visibility)
	}
	for _, v := range []string{"public", "private", "community", "shared"} {
		got, err := c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{Visibility: &v})
		if err != nil || got.Visibility != v {
			t.Fatalf("UpdateImage visibility %s = %q, %v", v, got.Visibility, err)
		}
		created, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: v, Project: "p", DiskFormat: "raw", ContainerFormat: "bare", Visibility: v})
		if err != nil || created.Visibility != v {
			t.Fatalf("CreateImage visibility %s = %q, %v", v, created.Visibility, err)
		}
	}
	bad := "everyone"
	_, err = c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{Visibility: &bad, Name: &bad})
	if !errors.Is(err, peers.ErrInvalid) || !strings.Contains(err.Error(), "visibility") {
		t.Fatalf("UpdateImage to visibility %q = %v, want ErrInvalid naming visibility", bad, err)
	}
	if got, _ := c.GetImage(t.Context(), img.ID); got.Name != "v" || got.Visibility != "shared" {
		t.Fatalf("a refused update changed the image: %+v", got)
	}
}

func TestImageTags(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	img, err := c.CreateImage(t.Context(), peers.ImageSpec{
		Name: "t", Project: "p", DiskFormat: "raw", ContainerFormat: "bare", Tags: []string{"web", "base", "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Tags, []string{"base", "web"}) {
		t.Fatalf("CreateImage tags = %v, want [base web] (a set)", img.Tags)
	}
	img.Tags[0] = "mutated" // the caller's copy
	got, err := c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{AddTags: []string{"gpu", "base"}, RemoveTags: []string{"web", "absent"}})
	if err != nil || !slices.Equal(got.Tags, []string{"base", "gpu"}) {
		t.Fatalf("UpdateImage tags = %v, %v; want [base gpu]", got.Tags, err)
	}
	got, err = c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{AddTags: []string{"x"}, RemoveTags: []string{"x"}})
	if err != nil || slices.Contains(got.Tags, "x") {
		t.Fatalf("UpdateImage adding and removing x = %v, %v; want x removed (removals apply last)", got.Tags, err)
	}
	list, err := c.ListImages(t.Context(), peers.ListOptions{})
	if err != nil || len(list) != 1 || !slices.Equal(list[0].Tags, []string{"base", "gpu"}) {
		t.Fatalf("ListImages = %+v, %v; want the image with tags [base gpu]", list, err)
	}
	_, err = c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{AddTags: []string{""}})
	if !errors.Is(err, peers.ErrInvalid) {
		t.Fatalf("UpdateImage adding an empty tag = %v, want ErrInvalid", err)
	}
	many := make([]string, 129)
	for i := range many {
		many[i] = fmt.Sprint("tag-", i)
	}
	_, err = c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{AddTags: many})
	if !errors.Is(err, peers.ErrCapacity) {
		t.Fatalf("UpdateImage to 131 tags = %v, want ErrCapacity (Glance's image_tag_quota is 128)", err)
	}
	if got, _ := c.GetImage(t.Context(), img.ID); !slices.Equal(got.Tags, []string{"base", "gpu"}) {
		t.Fatalf("refused updates changed the tags to %v", got.Tags)
	}
}

// patternReader yields n bytes cycling through block: an image of any size
// that never exists whole in memory.
type patternReader struct {
	block []byte
	off   int
	n     int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	k := 0
	for k < len(p) {
		c := copy(p[k:], r.block[r.off:])
		k += c
		r.off = (r.off + c) % len(r.block)
	}
	r.n -= int64(k)
	return k, nil
}

// procStatusKiB reads a field of /proc/self/status, in KiB.
func procStatusKiB(field string) (int64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err == nil {
				return kib, true
			}
		}
	}
	return 0, false
}

// BenchmarkImageUpload streams a 256 MiB raw image through UploadImage
// into the file store (hashing MD5 and SHA-512, checking the format,
// fsyncing) and reports MB/s and the peak RSS growth over the run: the
// upload streams, so the peak stays a few MiB whatever the image's size.
// The peak is measured by resetting VmHWM (/proc/self/clear_refs) before
// the run; where that is refused, the growth of VmHWM over the run is a
// lower bound.
func BenchmarkImageUpload(b *testing.B) {
	const size = 256 << 20
	cfg := localcloud.DevDefaults(b.TempDir())
	cfg.Hosts = []localcloud.HostConfig{{Name: "host-a", URI: "fake://a", VCPUs: 4, RAMMiB: 4096, DiskGiB: 100}}
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + i>>8 + 1)
	}
	ctx := context.Background()
	runtime.GC()
	reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	rssBefore, _ := procStatusKiB("VmRSS")
	hwmBefore, hwmOK := procStatusKiB("VmHWM")
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		img, err := c.CreateImage(ctx, peers.ImageSpec{Name: "bench", Project: "p", DiskFormat: "raw", ContainerFormat: "bare"})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.UploadImage(ctx, img.ID, &patternReader{block: block, n: size}, size); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := c.DeleteImage(ctx, img.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	hwmAfter, _ := procStatusKiB("VmHWM")
	if hwmOK {
		base := hwmBefore
		if reset {
			base = rssBefore
		}
		b.ReportMetric(float64(hwmAfter-base)/1024, "peakRSS-delta-MiB")
	}
	b.ReportMetric(float64(ms1.Sys-ms0.Sys)/(1<<20), "Sys-delta-MiB")
	b.Logf("%d uploads of %d MiB; VmHWM reset before the run: %v; VmRSS before %d KiB, VmHWM after %d KiB", b.N, size>>20, reset, rssBefore, hwmAfter)
}
