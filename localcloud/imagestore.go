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
	"sync"

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

// uploadCheck is what an upload's bytes must satisfy.
type uploadCheck struct {
	diskFormat string // the declared disk_format, checked on the stream
	md5        string // the expected MD5 (hex), or empty
}

// copyBufferSize is the upload's copy buffer: large enough that syscalls
// and hashing run on big chunks, small enough not to matter in memory.
const copyBufferSize = 256 << 10

// write streams r into a temporary file for image id, hashing and checking
// its format as it goes, and syncs it. It reads until EOF, or exactly size
// bytes when size >= 0 (more or fewer is an error). Bytes that contradict
// want.diskFormat stop the copy at once; an MD5 other than want.md5 fails
// it at the end. On any error, ctx's end included, the temporary file is
// removed.
func (s *imageStore) write(ctx context.Context, id string, r io.Reader, size int64, want uploadCheck) (*written, error) {
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
	insp := newFormatInspector(want.diskFormat)
	var src io.Reader = &ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		// One byte past size tells "too long" from "exactly right".
		src = io.LimitReader(src, size+1)
	}
	// The inspector goes first, so bytes it refuses never reach the disk.
	n, err := io.CopyBuffer(io.MultiWriter(insp, fanOut{f, md5h, shah}), src, make([]byte, copyBufferSize))
	if err != nil {
		if insp.err != nil && errors.Is(err, insp.err) {
			return nil, fmt.Errorf("refused after %d bytes: %w", n, err)
		}
		return nil, fmt.Errorf("upload interrupted after %d bytes: %w", n, err)
	}
	if err := ctx.Err(); err != nil {
		// Cancelled as the stream ended: the caller has given up on it.
		return nil, fmt.Errorf("upload interrupted after %d bytes: %w", n, err)
	}
	if size >= 0 && n > size {
		return nil, errf(peers.ErrInvalid, "upload is longer than the %d bytes announced", size)
	}
	if size >= 0 && n < size {
		return nil, errf(peers.ErrInvalid, "upload ended after %d of the %d bytes announced", n, size)
	}
	if err := insp.finish(); err != nil {
		return nil, err
	}
	sum := hex.EncodeToString(md5h.Sum(nil))
	if want.md5 != "" && sum != want.md5 {
		return nil, errf(peers.ErrInvalid, "checksum mismatch: the data's MD5 is %s, expected %s", sum, want.md5)
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
		md5: sum, sha512: hex.EncodeToString(shah.Sum(nil)),
	}, nil
}

// fanOut writes each chunk to all its writers at once, one goroutine each
// but the first: MD5, SHA-512 and the disk each take about as long, so on
// several cores an upload runs at the pace of the slowest, not their sum.
// Chunks too small to repay the goroutines are written in turn.
type fanOut []io.Writer

// fanOutMin is the smallest chunk fanOut spreads over goroutines.
const fanOutMin = 32 << 10

func (fo fanOut) Write(p []byte) (int, error) {
	if len(p) < fanOutMin {
		for _, w := range fo {
			if _, err := w.Write(p); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	errs := make([]error, len(fo))
	var wg sync.WaitGroup
	for i, w := range fo[1:] {
		wg.Go(func() { _, errs[i+1] = w.Write(p) })
	}
	_, errs[0] = fo[0].Write(p)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return len(p), nil
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
// size mismatch, the disk's, ctx ending, bytes that are not the declared
// disk_format, an MD5 other than the ImageSpec's Checksum) leaves the image
// killed with no partial file; the error says why (ErrInvalid for the
// data's own faults) and the log records it. An image deleted while saving
// stays deleted.
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
		status := img.Status
		c.mu.Unlock()
		return errf(peers.ErrConflict, "image %s is %s; only a queued image takes data", id, status)
	}
	img.Status, img.UpdatedAt = peers.ImageSaving, now()
	want := uploadCheck{diskFormat: img.DiskFormat, md5: img.wantMD5}
	c.markLocked(recImage, id)
	c.saveLocked()
	c.mu.Unlock()

	log := c.log.WithField("image", id)
	w, err := c.store.write(ctx, id, data, size, want)
	if err == nil {
		err = c.store.commit(w)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.saveLocked()
	c.markLocked(recImage, id)
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
		log.WithField("reason", err.Error()).Warn("image upload failed; image killed")
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
