package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cloudmux/cloudmux/peers"
)

// ConsoleOutput reads the end (the last 256 KiB, from a line start) of
// the serial console's log, a file in the pool directory that virtlogd
// writes. On a host reached through the local socket the driver reads the
// file itself. On a remote host it refreshes the pool and downloads the log
// volume (StorageVolDownload) on a connection of its own, cut right after:
// go-libvirt can deadlock a connection when libvirtd ends a download
// stream with an empty packet before the final one, which happens with
// files being appended to (see the package documentation). A domain
// whose guest has written nothing yet has an empty console.
func (d *Driver) ConsoleOutput(ctx context.Context, host, id string) (string, error) {
	h, err := d.host(host)
	if err != nil {
		return "", err
	}
	if _, err := d.domain(ctx, h, id); err != nil {
		return "", err
	}
	if h.test {
		return "", nil // the test driver runs no guest and writes no log
	}
	if h.local {
		out, err := readTail(d.cfg.PoolPath + "/" + d.n.consoleLog(id))
		if !errors.Is(err, os.ErrPermission) { // not root: go through libvirtd
			return out, err
		}
	}
	if err := d.refreshPool(ctx, h); err != nil {
		return "", err
	}
	_, v, err := d.volume(ctx, h, id+"-console.log")
	if errors.Is(err, peers.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	size, err := call(ctx, h, d.cfg.CallTimeout, "console log size", func(a API) (uint64, error) {
		_, capacity, _, err := a.StorageVolGetInfo(v)
		return capacity, err
	})
	if err != nil || size == 0 {
		return "", err
	}
	off := uint64(0)
	if size > consoleTail {
		off = size - consoleTail
	}
	out, err := rawDownload(ctx, h.uri, v, off, size-off, d.cfg.CallTimeout)
	if err != nil {
		return "", fmt.Errorf("console of domain %s: %w", id, err)
	}
	return fromLineStart(out, off > 0), nil
}

// readTail reads the last consoleTail bytes of a local file; a missing
// file is empty.
func readTail(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("libvirt: console log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("libvirt: console log: %w", err)
	}
	off := max(st.Size()-consoleTail, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return "", fmt.Errorf("libvirt: console log: %w", err)
	}
	return fromLineStart(b, off > 0), nil
}

// fromLineStart drops a partial first line when b starts mid-file.
func fromLineStart(b []byte, cut bool) string {
	if cut {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
