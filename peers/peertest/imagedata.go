package peertest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// imageBytes returns n deterministic bytes that do not compress to nothing.
func imageBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// brokenReader yields n bytes of data and then fails, like a client that
// goes away mid-upload.
type brokenReader struct {
	data []byte
	n    int
}

var errBrokenReader = errors.New("peertest: the upload's reader broke mid-way")

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errBrokenReader
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data, r.n = r.data[k:], r.n-k
	return k, nil
}

func (s *suite) testImageData(t *testing.T) {
	data, ok := s.c.(peers.ImageData)
	if !ok {
		t.Skip("the cloud does not implement peers.ImageData")
	}
	// Not a multiple of any block size, so off-by-one buffering shows.
	payload := imageBytes(256<<10+123, 42)
	md5sum := md5.Sum(payload)
	sha := sha512.Sum512(payload)

	upload := func(t *testing.T, size int64) peers.Image {
		t.Helper()
		img := s.makeImage(t, peers.ImageSpec{})
		if err := data.UploadImage(t.Context(), img.ID, bytes.NewReader(payload), size); err != nil {
			t.Fatalf("UploadImage(%s, %d bytes, size %d): %v", img.ID, len(payload), size, err)
		}
		return s.waitImage(t, img.ID, peers.ImageActive)
	}
	checkActive := func(t *testing.T, img peers.Image) {
		t.Helper()
		if img.Size != int64(len(payload)) || img.Checksum != hex.EncodeToString(md5sum[:]) ||
			img.OSHashAlgo != "sha512" || img.OSHashValue != hex.EncodeToString(sha[:]) {
			t.Fatalf("uploaded image = size %d, checksum %q, %s %q\nwant size %d, MD5 %x, sha512 %x",
				img.Size, img.Checksum, img.OSHashAlgo, img.OSHashValue, len(payload), md5sum, sha)
		}
	}

	t.Run("UploadDownload", func(t *testing.T) {
		img := upload(t, int64(len(payload)))
		checkActive(t, img)
		rc, err := data.DownloadImage(t.Context(), img.ID)
		if err != nil {
			t.Fatalf("DownloadImage(%s): %v", img.ID, err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatalf("reading DownloadImage(%s): %v", img.ID, err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("DownloadImage returned %d bytes differing from the %d uploaded (first difference at %d)", len(got), len(payload), firstDiff(got, payload))
		}
		err = data.UploadImage(t.Context(), img.ID, bytes.NewReader(payload), int64(len(payload)))
		wantErr(t, "UploadImage to an active image", err, peers.ErrConflict)

		if err := s.c.DeleteImage(t.Context(), img.ID); err != nil {
			t.Fatalf("DeleteImage: %v", err)
		}
		if err := s.pollGone("image "+img.ID, s.imageStatus(img.ID)); err != nil {
			t.Fatal(err)
		}
		rc, err = data.DownloadImage(t.Context(), img.ID)
		if err == nil {
			_ = rc.Close()
		}
		wantErr(t, "DownloadImage of a deleted image", err, peers.ErrNotFound)
	})

	t.Run("UnknownSize", func(t *testing.T) {
		checkActive(t, upload(t, -1))
	})

	t.Run("Interrupted", func(t *testing.T) {
		img := s.makeImage(t, peers.ImageSpec{})
		half := len(payload) / 2
		err := data.UploadImage(t.Context(), img.ID, &brokenReader{data: payload, n: half}, int64(len(payload)))
		if err == nil {
			t.Fatalf("UploadImage with a reader that breaks after %d of %d bytes returned no error", half, len(payload))
		}
		// killed is what the contract asks; real Glance resets a failed
		// upload to queued. Never active.
		var got peers.Image
		s.mustPoll(t, "image "+img.ID+" to become killed (or queued)", func(ctx context.Context) (bool, string, error) {
			var err error
			got, err = s.c.GetImage(ctx, img.ID)
			if err != nil {
				return false, "", err
			}
			if got.Status == peers.ImageActive {
				return false, string(got.Status), fmt.Errorf("an interrupted upload made the image active with size %d", got.Size)
			}
			return got.Status == peers.ImageKilled || got.Status == peers.ImageQueued, string(got.Status), nil
		})
	})

	t.Run("ExpectedChecksum", func(t *testing.T) {
		good := s.makeImage(t, peers.ImageSpec{Checksum: hex.EncodeToString(md5sum[:])})
		if err := data.UploadImage(t.Context(), good.ID, bytes.NewReader(payload), int64(len(payload))); err != nil {
			t.Fatalf("UploadImage with the expected checksum: %v", err)
		}
		checkActive(t, s.waitImage(t, good.ID, peers.ImageActive))

		wrong := md5.Sum(append([]byte("not the payload"), payload...))
		img := s.makeImage(t, peers.ImageSpec{Checksum: hex.EncodeToString(wrong[:])})
		err := data.UploadImage(t.Context(), img.ID, bytes.NewReader(payload), int64(len(payload)))
		wantErr(t, "UploadImage of bytes whose MD5 is not the expected checksum", err, peers.ErrInvalid)
		// killed or queued, as the contract says for a failed upload. A
		// driver over a Glance that cannot check the MD5 before the image
		// goes active may delete the image instead; never active.
		s.mustPoll(t, "image "+img.ID+" refused (killed, queued or gone)", func(ctx context.Context) (bool, string, error) {
			got, err := s.c.GetImage(ctx, img.ID)
			if errors.Is(err, peers.ErrNotFound) {
				return true, "gone", nil
			}
			if err != nil {
				return false, "", err
			}
			if got.Status == peers.ImageActive {
				return false, string(got.Status), fmt.Errorf("bytes with MD5 %x made the image active though %x was expected", md5sum, wrong)
			}
			return got.Status == peers.ImageKilled || got.Status == peers.ImageQueued, string(got.Status), nil
		})
	})

	t.Run("UnknownImage", func(t *testing.T) {
		err := data.UploadImage(t.Context(), "00000000-0000-4000-8000-0000000000ac", bytes.NewReader(payload), -1)
		wantErr(t, "UploadImage to an unknown image", err, peers.ErrNotFound)
	})
}

// waitImage polls until the image reaches want; killed ends the wait.
func (s *suite) waitImage(t *testing.T, id string, want peers.ImageStatus) peers.Image {
	t.Helper()
	var img peers.Image
	s.mustPoll(t, fmt.Sprintf("image %s to become %s", id, want), func(ctx context.Context) (bool, string, error) {
		var err error
		img, err = s.c.GetImage(ctx, id)
		if err != nil {
			return false, "", err
		}
		if img.Status == peers.ImageKilled && want != peers.ImageKilled {
			return false, string(img.Status), errors.New("image was killed")
		}
		return img.Status == want, string(img.Status), nil
	})
	return img
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
