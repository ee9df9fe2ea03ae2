package openstack

import (
	"context"
	"crypto/md5" //nolint:gosec // Glance's checksum is MD5; it is compared, not trusted for security
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cloudmux/cloudmux/peers"
)

// errReplay stops gophercloud (or anyone) from sending an upload body a
// second time: a stream cannot be rewound, and a replay after a 401 would
// store only the bytes left over.
var errReplay = errors.New("the data stream was already sent once and cannot be replayed")

// uploadBody streams data (an image's to Glance, an object's to Swift)
// while checking it. It hashes what passes, and refuses to hand over the
// final bytes when the total is not size or the MD5 is not the expected
// one: the request then fails before the service has everything, so
// Glance leaves the image queued instead of making bad bytes active and
// Swift stores nothing.
type uploadBody struct {
	what string // "the image data", in messages
	// ctx is the upload's: once it is done no more bytes are handed over,
	// so a cancelled upload never completes, even when the transport has
	// not yet noticed the cancellation and would send the rest.
	ctx      context.Context
	r        io.Reader
	size     int64 // -1: unknown
	n        int64
	h        hash.Hash
	expected string
	err      error // why the upload was refused, if it was
	closed   bool
}

func (b *uploadBody) fail(err error) (int, error) {
	b.err = err
	return 0, err
}

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errReplay
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.size >= 0 && b.n == b.size {
		return 0, io.EOF
	}
	if b.size >= 0 && int64(len(p)) > b.size-b.n {
		p = p[:b.size-b.n]
	}
	k, err := b.r.Read(p)
	if cerr := b.ctx.Err(); cerr != nil {
		return b.fail(fmt.Errorf("%s after %d bytes: %w", b.what, b.n, cerr))
	}
	b.h.Write(p[:k])
	b.n += int64(k)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return b.fail(fmt.Errorf("reading %s after %d bytes: %w", b.what, b.n, err))
	case errors.Is(err, io.EOF) && b.size >= 0 && b.n < b.size:
		return b.fail(fmt.Errorf("%s ended after %d of %d bytes: %w", b.what, b.n, b.size, peers.ErrInvalid))
	}
	last := errors.Is(err, io.EOF) || (b.size >= 0 && b.n == b.size)
	if !last {
		return k, nil
	}
	if b.size >= 0 && err == nil {
		// Declared size reached: the source must be at its end too, or the
		// image would silently be a prefix of what was sent.
		if extra := probeMore(b.what, b.r); extra != nil {
			return b.fail(extra)
		}
	}
	if got := hex.EncodeToString(b.h.Sum(nil)); b.expected != "" && got != b.expected {
		return b.fail(fmt.Errorf("%s's MD5 is %s, expected %s: %w", b.what, got, b.expected, peers.ErrInvalid))
	}
	return k, err
}

// probeMore reads until it sees data (an error) or the end (nil).
func probeMore(what string, r io.Reader) error {
	var one [1]byte
	for {
		k, err := r.Read(one[:])
		if k > 0 {
			return fmt.Errorf("%s is longer than its declared size: %w", what, peers.ErrInvalid)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
	}
}

// Close marks the body spent; the HTTP transport closes it after sending.
func (b *uploadBody) Close() error {
	b.closed = true
	return nil
}

// UploadImage streams data into a queued image (PUT /v2/images/ID/file),
// never buffering it whole. It is sent with Content-Length when size is
// known, chunked otherwise. Bytes that are not size long, or whose MD5 is
// not the ImageSpec.Checksum the image was created with, fail the upload
// before Glance has them all (the image stays queued); a checksum mismatch
// also deletes the image, as the contract says. After the upload the
// image's checksum as Glance computed it is compared with the MD5 of what
// was sent.
func (c *Cloud) UploadImage(ctx context.Context, id string, data io.Reader, size int64) error {
	if err := c.needImage(); err != nil {
		return err
	}
	// The upload cannot be replayed after a 401: make sure the token
	// outlives a long upload.
	if err := c.freshToken(ctx, 15*time.Minute); err != nil {
		return err
	}
	c.mu.Lock()
	expected := c.expected[id]
	c.mu.Unlock()
	if size < 0 {
		size = -1
	}
	body := &uploadBody{what: "the image data", ctx: ctx, r: data, size: size, h: md5.New(), expected: expected} //nolint:gosec // see import
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.image.ServiceURL("images", id, "file"), body)
	if err != nil {
		return fmt.Errorf("glance: upload image %s: %w", id, err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if size == 0 {
		req.Body, req.GetBody = http.NoBody, nil
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", c.provider.Token())
	req.Header.Set("User-Agent", c.provider.UserAgent.Join())
	resp, err := c.http.Do(req)
	if err == nil {
		err = responseError(resp, http.MethodPut, []int{http.StatusNoContent})
	}
	if err != nil {
		if body.err != nil {
			if expected != "" && errors.Is(body.err, peers.ErrInvalid) && strings.Contains(body.err.Error(), "MD5") {
				c.discardImage(id)
			} else {
				c.settle(id)
			}
			return fmt.Errorf("glance: upload image %s: %w", id, body.err)
		}
		return c.translate("glance: upload image "+id, err)
	}
	sent := hex.EncodeToString(body.h.Sum(nil))
	img, err := c.GetImage(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case img.Checksum != "" && img.Checksum != sent:
		c.discardImage(id)
		return fmt.Errorf("glance: image %s stored MD5 %s but %s was sent: %w", id, img.Checksum, sent, peers.ErrUnavailable)
	case expected != "" && img.Checksum != expected:
		c.discardImage(id)
		return fmt.Errorf("glance: image %s has MD5 %q, expected %s: %w", id, img.Checksum, expected, peers.ErrInvalid)
	}
	c.mu.Lock()
	delete(c.expected, id)
	c.mu.Unlock()
	return nil
}

// settle waits, briefly, for Glance to finish with an upload the driver
// cut off: Glance notices the dropped connection on its own time and shows
// the image saving until then, refusing a new upload meanwhile. Best
// effort: callers still see saving if Glance takes longer.
func (c *Cloud) settle(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		img, err := c.GetImage(ctx, id)
		if err != nil || img.Status != peers.ImageSaving {
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// discardImage deletes an image whose bytes are wrong, on its own deadline
// (the caller's context may be what ended).
func (c *Cloud) discardImage(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	defer cancel()
	if err := c.DeleteImage(ctx, id); err != nil && !errors.Is(err, peers.ErrNotFound) {
		c.log.WithError(err).WithField("image", id).Warn("openstack: cannot delete an image whose data failed its checksum")
	}
}

// responseError turns an answer outside ok into gophercloud's error type,
// so translate reads it like any other; the body is consumed and closed
// either way.
func responseError(resp *http.Response, method string, ok []int) error {
	defer resp.Body.Close()
	for _, code := range ok {
		if resp.StatusCode == code {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return gophercloud.ErrUnexpectedResponseCode{URL: resp.Request.URL.String(), Method: method, Expected: ok,
		Actual: resp.StatusCode, Body: b, ResponseHeader: resp.Header}
}

// DownloadImage streams an active image's bytes. An image with no data
// yet is ErrConflict. The stream checks Glance's Content-MD5 at its end: a
// body that does not match fails the last read instead of ending cleanly.
func (c *Cloud) DownloadImage(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := c.needImage(); err != nil {
		return nil, err
	}
	resp, err := c.image.Get(ctx, c.image.ServiceURL("images", id, "file"), nil, &gophercloud.RequestOpts{
		KeepResponseBody: true, OkCodes: []int{200, 204},
	})
	if err != nil {
		return nil, c.translate("glance: download image "+id, err)
	}
	if resp.StatusCode == http.StatusNoContent {
		resp.Body.Close()
		return nil, fmt.Errorf("glance: image %s has no data: %w", id, peers.ErrConflict)
	}
	want := ""
	if raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("Content-MD5")); err == nil && len(raw) == md5.Size {
		want = hex.EncodeToString(raw)
	} else if h := resp.Header.Get("Content-MD5"); len(h) == 32 {
		want = strings.ToLower(h) // older Glance sent it hex
	}
	return &downloadBody{rc: resp.Body, h: md5.New(), want: want, what: "glance: download image " + id}, nil //nolint:gosec // see import
}

// downloadBody hashes a download as it is read and fails its last read
// when the bytes do not have the MD5 the service announced (want; empty:
// no check; h nil: no hashing, for a part of an object). what names the
// call in errors.
type downloadBody struct {
	rc   io.ReadCloser
	h    hash.Hash
	want string
	what string
}

func (d *downloadBody) Read(p []byte) (int, error) {
	k, err := d.rc.Read(p)
	if d.h == nil {
		if err != nil && !errors.Is(err, io.EOF) {
			return k, translate(d.what, err)
		}
		return k, err
	}
	d.h.Write(p[:k])
	if errors.Is(err, io.EOF) && d.want != "" {
		if got := hex.EncodeToString(d.h.Sum(nil)); got != d.want {
			return k, fmt.Errorf("%s: read bytes with MD5 %s, the service said %s: %w", d.what, got, d.want, peers.ErrUnavailable)
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return k, translate(d.what, err)
	}
	return k, err
}

func (d *downloadBody) Close() error { return d.rc.Close() }
