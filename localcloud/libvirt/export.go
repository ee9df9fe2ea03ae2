package libvirt

import (
	"context"
	"fmt"
	"io"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

var _ localcloud.VolumeExporter = (*Driver)(nil)

// exportChunk is how much of a volume one download reads: each is a
// connection of its own (rawDownload, see download.go) holding the chunk
// in memory, so a large volume streams in bounded pieces.
const exportChunk = 8 << 20

// ExportVolume streams a pool volume's file out of its host (a server
// snapshot's standalone qcow2 copy) in chunks of StorageVolDownload, each
// on its own connection; a chunk shorter than asked for is the end of
// the file. The test:// driver keeps no volume data: ErrNotSupported.
func (d *Driver) ExportVolume(ctx context.Context, host, id string, w io.Writer) error {
	h, v, err := d.hostVolume(ctx, host, id)
	if err != nil {
		return err
	}
	if h.test {
		return fmt.Errorf("libvirt: the test driver keeps no volume data to export: %w", peers.ErrNotSupported)
	}
	for off := uint64(0); ; {
		b, err := rawDownload(ctx, h.uri, v, off, exportChunk, d.cfg.CallTimeout)
		if err != nil {
			return fmt.Errorf("export of volume %s at byte %d: %w", id, off, err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		if len(b) < exportChunk {
			return nil
		}
		off += uint64(len(b))
	}
}
