package localcloud_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
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
	img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "img", Project: "p", DiskFormat: "qcow2", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// failAfter yields n bytes of zeros, then err.
type failAfter struct {
	n   int
	err error
}

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// cancelAfter yields n bytes, then cancels the upload's context and keeps
// yielding: only the context can stop it.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
	}
	k := min(len(p), 4096)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func TestUploadFailureKillsImage(t *testing.T) {
	boom := errors.New("client went away")
	const total = 1 << 20
	tests := []struct {
		name string
		// upload runs UploadImage and returns its error.
		upload func(ctx context.Context, c *localcloud.Cloud, id string) error
		want   error
	}{
		{"ReaderBreaks", func(ctx context.Context, c *localcloud.Cloud, id string) error {
			return c.UploadImage(ctx, id, &failAfter{n: total / 2, err: boom}, total)
		}, boom},
		{"ContextCancelled", func(ctx context.Context, c *localcloud.Cloud, id string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return c.UploadImage(ctx, id, &cancelAfter{n: total / 2, cancel: cancel}, -1)
		}, context.Canceled},
		{"ShorterThanAnnounced", func(ctx context.Context, c *localcloud.Cloud, id string) error {
			return c.UploadImage(ctx, id, bytes.NewReader(make([]byte, 100)), 101)
		}, peers.ErrInvalid},
		{"LongerThanAnnounced", func(ctx context.Context, c *localcloud.Cloud, id string) error {
			return c.UploadImage(ctx, id, bytes.NewReader(make([]byte, 102)), 101)
		}, peers.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneHost(t)
			c, _ := newCloud(t, cfg)
			img := queuedImage(t, c)
			err := tc.upload(t.Context(), c, img.ID)
			if !errors.Is(err, tc.want) {
				t.Fatalf("UploadImage = %v, want an error matching %v", err, tc.want)
			}
			got, err := c.GetImage(t.Context(), img.ID)
			if err != nil || got.Status != peers.ImageKilled || got.Size != 0 || got.Checksum != "" {
				t.Fatalf("image after a failed upload = %+v, %v; want killed with no size or checksum", got, err)
			}
			if files := imageFiles(t, cfg.DataDir); len(files) != 0 {
				t.Fatalf("image store after a failed upload holds %v, want nothing (no partial file)", files)
			}
			err = c.UploadImage(t.Context(), img.ID, bytes.NewReader([]byte("x")), 1)
			if !errors.Is(err, peers.ErrConflict) {
				t.Fatalf("UploadImage to a killed image = %v, want ErrConflict", err)
			}
			if _, err := c.DownloadImage(t.Context(), img.ID); !errors.Is(err, peers.ErrConflict) {
				t.Fatalf("DownloadImage of a killed image = %v, want ErrConflict", err)
			}
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
