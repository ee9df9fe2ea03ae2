package image

import (
	"context"
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// Upload streams data into a queued image on its peer, without buffering:
// the reader is handed to the peer as it is. size is the length the
// client announced, or -1. Data beyond MaxImageSize is ErrTooLarge and the
// image is left as the peer leaves a failed upload (killed, or queued).
func (s *Service) Upload(ctx context.Context, c Caller, id string, data io.Reader, size int64) error {
	l, img, err := s.findWritable(ctx, c, id)
	if err != nil {
		return err
	}
	if img.Status != peers.ImageQueued { // a staged image too ("uploading")
		return fmt.Errorf("image status transition from %s to saving is not allowed: %w", img.Status, ErrConflict)
	}
	return s.uploadTo(ctx, l, id, data, size)
}

// uploadTo streams data to the located image's peer (Upload's and an
// import's last step).
func (s *Service) uploadTo(ctx context.Context, l located, id string, data io.Reader, size int64) error {
	limit := s.maxSize()
	if size > limit {
		return fmt.Errorf("image data of %d bytes exceeds the %d byte image size cap: %w", size, limit, ErrTooLarge)
	}
	dst, ok := l.member.Cloud.(peers.ImageData)
	if !ok {
		return fmt.Errorf("peer %s cannot store image data: %w", l.member.Peer.Name, peers.ErrNotSupported)
	}
	capped := &capReader{r: data, left: limit}
	err := dst.UploadImage(ctx, l.img.ID, capped, size)
	if capped.over {
		return fmt.Errorf("image data exceeds the %d byte image size cap: %w", limit, ErrTooLarge)
	}
	if err != nil {
		return fmt.Errorf("uploading image %s to peer %s: %w", id, l.member.Peer.Name, err)
	}
	s.Log.WithFields(logrus.Fields{"image": id, "peer": l.member.Peer.Name}).Info("image data uploaded")
	return nil
}

// Download returns the image and a stream of its bytes straight from its
// peer; the caller closes it. An image without data (queued, saving,
// killed) returns a nil stream (Glance answers 204). A deactivated image
// is ErrForbidden but to cloud admins.
func (s *Service) Download(ctx context.Context, c Caller, id string) (Image, io.ReadCloser, error) {
	l, img, err := s.find(ctx, c, id)
	if err != nil {
		return Image{}, nil, err
	}
	if img.Status == StatusDeactivated && !c.Admin {
		return Image{}, nil, fmt.Errorf("the requested image %s has been deactivated; image data download is prohibited: %w", id, ErrForbidden)
	}
	if img.Status != peers.ImageActive && img.Status != StatusDeactivated {
		return img, nil, nil
	}
	src, ok := l.member.Cloud.(peers.ImageData)
	if !ok {
		return Image{}, nil, fmt.Errorf("peer %s cannot serve image data: %w", l.member.Peer.Name, peers.ErrNotSupported)
	}
	rc, err := src.DownloadImage(ctx, l.img.ID)
	if err != nil {
		return Image{}, nil, fmt.Errorf("downloading image %s from peer %s: %w", id, l.member.Peer.Name, err)
	}
	return img, rc, nil
}

// capReader fails a stream that goes past left bytes, remembering it did.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a stream of exactly the cap from a longer one.
		var b [1]byte
		n, err := c.r.Read(b[:])
		if n > 0 {
			c.over = true
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
