package libvirt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// CreateVolume creates a sparse volume: qcow2 unless vol.Format says raw,
// an overlay when vol.BackingID is set. A volume of exact SizeBytes is a
// plain file that UploadVolume fills verbatim (a base image, a config
// drive), whatever format its bytes are in.
func (d *Driver) CreateVolume(ctx context.Context, host string, vol localcloud.PoolVolume) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	p, err := d.pool(ctx, h)
	if err != nil {
		return err
	}
	format := cmp.Or(vol.Format, localcloud.VolumeQCOW2)
	if vol.SizeBytes > 0 {
		format = localcloud.VolumeRaw
	}
	var backingPath string
	if vol.BackingID != "" {
		format = localcloud.VolumeQCOW2
		_, bv, err := d.volume(ctx, h, vol.BackingID)
		if err != nil {
			return fmt.Errorf("backing volume of %s: %w", vol.ID, err)
		}
		if backingPath, err = call(ctx, h, d.cfg.CallTimeout, "backing path", func(a API) (string, error) { return a.StorageVolGetPath(bv) }); err != nil {
			return err
		}
	}
	if vol.Bytes() <= 0 {
		return fmt.Errorf("libvirt: volume %s: size %d: %w", vol.ID, vol.Bytes(), peers.ErrInvalid)
	}
	x, err := buildVolumeXML(d.n.volume(vol.ID), vol.Bytes(), format, backingPath, cmp.Or(vol.BackingFormat, localcloud.VolumeRaw))
	if err != nil {
		return err
	}
	_, err = call(ctx, h, d.cfg.CallTimeout, "create volume "+vol.ID, func(a API) (golibvirt.StorageVol, error) {
		return a.StorageVolCreateXML(p, x, 0)
	})
	if isCode(err, golibvirt.ErrStorageVolExist) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		return fmt.Errorf("libvirt: volume %s already exists: %w: %w", vol.ID, peers.ErrConflict, err)
	}
	return err
}

// countingReader counts what passes and stops when ctx ends.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// UploadVolume streams data into the volume with StorageVolUpload (in
// chunks; nothing is buffered whole). The test:// driver has no storage
// data path: there the data is read and dropped, so callers behave the
// same.
func (d *Driver) UploadVolume(ctx context.Context, host, id string, data io.Reader, size int64) error {
	h, v, err := d.hostVolume(ctx, host, id)
	if err != nil {
		return err
	}
	cr := &countingReader{ctx: ctx, r: data}
	if size >= 0 {
		cr.r = io.LimitReader(data, size+1)
	}
	length := uint64(0)
	if size > 0 {
		length = uint64(size)
	}
	err = do(ctx, h, 0, "upload to volume "+id, func(a API) error { return a.StorageVolUpload(v, cr, 0, length, 0) })
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		_, err = io.Copy(io.Discard, cr)
	}
	if err != nil {
		return err
	}
	if size >= 0 && cr.n != size {
		return fmt.Errorf("libvirt: volume %s: got %d bytes, expected %d: %w", id, cr.n, size, peers.ErrInvalid)
	}
	if h.test {
		return nil
	}
	return d.refuseBackingFile(ctx, h, id)
}

// refuseBackingFile checks what was uploaded: a qcow2 image naming a
// backing file of its own would have QEMU open that file on the host (any
// file: /etc/shadow) for the guest to read, so it is refused, as Nova
// refuses it. The pool refresh makes libvirt probe the new bytes.
func (d *Driver) refuseBackingFile(ctx context.Context, h *hostConn, id string) error {
	if err := d.refreshPool(ctx, h); err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, id)
	if err != nil {
		return err
	}
	x, err := call(ctx, h, d.cfg.CallTimeout, "volume XML", func(a API) (string, error) { return a.StorageVolGetXMLDesc(v, 0) })
	if err != nil {
		return err
	}
	if pv := d.volumeFromXML(id, x); pv.BackingID != "" {
		return fmt.Errorf("libvirt: volume %s: the uploaded image names a backing file (%s); refused: %w", id, pv.BackingID, peers.ErrInvalid)
	}
	return nil
}

// ResizeVolume grows a volume: through the running guest's block layer
// (DomainBlockResize, so the guest sees it) when it is attached to a
// running domain, else in the pool (StorageVolResize). The test:// driver
// resizes nothing.
func (d *Driver) ResizeVolume(ctx context.Context, host, id string, newSizeGiB int, domainID string) error {
	h, v, err := d.hostVolume(ctx, host, id)
	if err != nil {
		return err
	}
	bytes := uint64(newSizeGiB) << 30
	capacity, err := call(ctx, h, d.cfg.CallTimeout, "volume info", func(a API) (uint64, error) {
		_, c, _, err := a.StorageVolGetInfo(v)
		return c, err
	})
	if err != nil {
		return err
	}
	if bytes < capacity {
		return fmt.Errorf("libvirt: volume %s: %d GiB would shrink it: %w", id, newSizeGiB, peers.ErrInvalid)
	}
	if domainID != "" {
		run, err := d.running(ctx, host, domainID)
		if err != nil {
			return err
		}
		if run {
			disk, err := d.attachedDisk(ctx, h, domainID, id)
			if err != nil {
				return err
			}
			err = d.domainOp(ctx, host, domainID, "block resize "+id+" of", func(a API, dom golibvirt.Domain) error {
				return a.DomainBlockResize(dom, disk.Target.Dev, bytes, golibvirt.DomainBlockResizeBytes)
			})
			if h.test && errors.Is(err, peers.ErrNotSupported) {
				return nil
			}
			return err
		}
	}
	err = do(ctx, h, d.cfg.CallTimeout, "resize volume "+id, func(a API) error { return a.StorageVolResize(v, bytes, 0) })
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		return nil
	}
	return err
}

var _ localcloud.VolumeCopier = (*Driver)(nil)

// CopyVolume clones src into a new qcow2 volume of its capacity with
// StorageVolCreateXMLFrom (qemu-img convert: an overlay's chain is read
// through, so the copy stands alone and its base may go), or, when src is
// attached to a running domain, with a backup job (liveCopy).
func (d *Driver) CopyVolume(ctx context.Context, host, srcID, domainID string, dst localcloud.PoolVolume) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	p, src, err := d.volume(ctx, h, srcID)
	if err != nil {
		return err
	}
	capacity, err := call(ctx, h, d.cfg.CallTimeout, "volume info", func(a API) (uint64, error) {
		_, c, _, err := a.StorageVolGetInfo(src)
		return c, err
	})
	if err != nil {
		return err
	}
	if domainID != "" && !h.test {
		run, err := d.running(ctx, host, domainID)
		if err != nil {
			return err
		}
		if run {
			return d.liveCopy(ctx, h, domainID, srcID, src, dst)
		}
	}
	x, err := buildVolumeXML(d.n.volume(dst.ID), int64(capacity), localcloud.VolumeQCOW2, "", "")
	if err != nil {
		return err
	}
	// No call timeout: the copy takes as long as the bytes do; ctx bounds it.
	_, err = call(ctx, h, 0, "copy volume "+srcID+" to "+dst.ID, func(a API) (golibvirt.StorageVol, error) {
		return a.StorageVolCreateXMLFrom(p, x, src, 0)
	})
	if isCode(err, golibvirt.ErrStorageVolExist) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		return fmt.Errorf("libvirt: volume %s already exists: %w: %w", dst.ID, peers.ErrConflict, err)
	}
	return err
}

// DeleteVolume deletes a volume.
func (d *Driver) DeleteVolume(ctx context.Context, host, id string) error {
	h, v, err := d.hostVolume(ctx, host, id)
	if err != nil {
		return err
	}
	return do(ctx, h, d.cfg.CallTimeout, "delete volume "+id, func(a API) error { return a.StorageVolDelete(v, 0) })
}

// hostVolume looks up a host's connection and one of its pool volumes.
func (d *Driver) hostVolume(ctx context.Context, host, id string) (*hostConn, golibvirt.StorageVol, error) {
	h, err := d.host(host)
	if err != nil {
		return nil, golibvirt.StorageVol{}, err
	}
	_, v, err := d.volume(ctx, h, id)
	return h, v, err
}
