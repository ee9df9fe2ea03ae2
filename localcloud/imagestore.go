package localcloud

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// imageStore keeps image bytes as one file per image, named by its ID, in
// one directory. Uploads go to a temporary file in the same directory and
// are renamed into place only when complete and synced, so a file under an
// image's name is always a whole image, even after a crash.
type imageStore struct {
	dir string
}

// tmpPrefix marks partial uploads, which a restart removes.
const tmpPrefix = ".upload-"

func newImageStore(dir string, log logrus.FieldLogger) (*imageStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	// Partial uploads of a process that died mid-upload: their images are
	// gone with that process's memory, and nothing will finish them.
	leftovers, err := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	if err != nil {
		return nil, err
	}
	for _, f := range leftovers {
		if err := os.Remove(f); err != nil {
			return nil, err
		}
		log.WithField("file", f).Info("removed a partial upload left by an earlier run")
	}
	return &imageStore{dir: dir}, nil
}

func (s *imageStore) path(id string) string { return filepath.Join(s.dir, id) }

// written is a complete upload in its temporary file, not yet in place.
type written struct {
	tmp    string
	final  string
	size   int64
	md5    string
	sha512 string
}

// write streams r into a temporary file for image id, hashing as it goes,
// and syncs it. It reads until EOF, or exactly size bytes when size >= 0
// (more or fewer is an error). On any error, ctx's end included, the
// temporary file is removed.
func (s *imageStore) write(ctx context.Context, id string, r io.Reader, size int64) (*written, error) {
	f, err := os.CreateTemp(s.dir, tmpPrefix+id+"-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	md5h, shah := md5.New(), sha512.New()
	src := &ctxReader{ctx: ctx, r: r}
	var n int64
	if size >= 0 {
		// One byte past size tells "too long" from "exactly right".
		n, err = io.Copy(io.MultiWriter(f, md5h, shah), io.LimitReader(src, size+1))
	} else {
		n, err = io.Copy(io.MultiWriter(f, md5h, shah), src)
	}
	if err != nil {
		return nil, fmt.Errorf("upload interrupted after %d bytes: %w", n, err)
	}
	if size >= 0 && n > size {
		return nil, errf(peers.ErrInvalid, "upload is longer than the %d bytes announced", size)
	}
	if size >= 0 && n < size {
		return nil, errf(peers.ErrInvalid, "upload ended after %d of the %d bytes announced", n, size)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("syncing upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("closing upload: %w", err)
	}
	ok = true
	return &written{
		tmp: f.Name(), final: s.path(id), size: n,
		md5: hex.EncodeToString(md5h.Sum(nil)), sha512: hex.EncodeToString(shah.Sum(nil)),
	}, nil
}

// commit renames the upload into place and syncs the directory, so the
// rename survives a crash.
func (s *imageStore) commit(w *written) error {
	if err := os.Rename(w.tmp, w.final); err != nil {
		_ = os.Remove(w.tmp)
		return err
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// open opens an image's bytes.
func (s *imageStore) open(id string) (*os.File, error) { return os.Open(s.path(id)) }

// remove deletes an image's bytes; a missing file is fine.
func (s *imageStore) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ctxReader stops a stream once its context is done. A Read blocked inside
// r is not interrupted: the HTTP server closes a cancelled request's body,
// which ends that Read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// ctxReadCloser is a ctxReader over a file that closes it.
type ctxReadCloser struct {
	ctxReader
	c io.Closer
}

func (r *ctxReadCloser) Close() error { return r.c.Close() }

// UploadImage streams data into a queued image: queued -> saving -> active
// with size, MD5 checksum and SHA-512 os_hash_value computed on the way.
// Bytes go to disk, never whole into memory. Any failure (the reader's, a
// size mismatch, the disk's, ctx ending) leaves the image killed with no
// partial file. An image deleted while saving stays deleted.
func (c *Cloud) UploadImage(ctx context.Context, id string, data io.Reader, size int64) error {
	if size < -1 {
		return errf(peers.ErrInvalid, "image %s: size %d; want >= 0, or -1 when unknown", id, size)
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	img, err := c.liveImage(id)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if img.Status != peers.ImageQueued {
		c.mu.Unlock()
		return errf(peers.ErrConflict, "image %s is %s; only a queued image takes data", id, img.Status)
	}
	img.Status, img.UpdatedAt = peers.ImageSaving, now()
	c.mu.Unlock()

	log := c.log.WithField("image", id)
	w, err := c.store.write(ctx, id, data, size)
	if err == nil {
		err = c.store.commit(w)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if img.Status != peers.ImageSaving {
		// Deleted meanwhile: its bytes must not outlive it.
		if err == nil {
			_ = c.store.remove(id)
		}
		return errf(peers.ErrNotFound, "image %s was deleted during its upload", id)
	}
	img.UpdatedAt = now()
	if err != nil {
		img.Status = peers.ImageKilled
		log.WithError(err).Warn("image upload failed; image killed")
		return fmt.Errorf("image %s killed: %w", id, err)
	}
	img.Status, img.Size = peers.ImageActive, w.size
	img.Checksum, img.OSHashAlgo, img.OSHashValue = w.md5, "sha512", w.sha512
	log.WithFields(logrus.Fields{"size": w.size, "checksum": w.md5}).Info("image active")
	return nil
}

// DownloadImage streams an active image's bytes. The stream stops when ctx
// ends; deleting the image meanwhile does not cut it short.
func (c *Cloud) DownloadImage(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	img, err := c.liveImage(id)
	if err == nil && img.Status != peers.ImageActive {
		err = errf(peers.ErrConflict, "image %s is %s; it has no data to download", id, img.Status)
	}
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	// Opened under c.mu so a concurrent delete cannot remove the file
	// between the status check and the open.
	f, err := c.store.open(id)
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("image %s: opening its data: %w", id, err)
	}
	return &ctxReadCloser{ctxReader{ctx: ctx, r: f}, f}, nil
}

// openImageData opens an active image's bytes for the background work that
// copies them into a volume; callers hold c.mu.
func (c *Cloud) openImageData(img *image) (*os.File, error) {
	f, err := c.store.open(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: opening its data: %w", img.ID, err)
	}
	return f, nil
}
