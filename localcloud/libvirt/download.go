package libvirt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/peers"
)

// go-libvirt's stream code can deadlock a connection at the end of a
// download: libvirtd ends the data with an empty CONTINUE packet and then
// sends an OK, and go-libvirt, which returns at the empty packet, has its
// router hold its lock while handing the OK to a caller that has left,
// while the caller waits for that lock to deregister. Both goroutines,
// and the connection, are stuck for good, and closing the socket frees
// neither. So volume downloads (only the console of a remote host needs
// one) do not use go-libvirt: rawDownload speaks the few RPCs a download
// takes over a socket of its own, on the caller's goroutine, finishes the
// stream as libvirt's own client does (data, empty CONTINUE, the client's
// OK, libvirtd's OK), and closes the socket. Nothing outlives the call.
// libvirtd may send the first data before the call's reply (2 downloads
// in 250 here): those packets are kept, not dropped, or the download
// would come back empty, or wait for data that already came.

// The libvirt RPC protocol's constants (remote_protocol.x, virnetprotocol.x).
const (
	remoteProgram         = 0x20008086
	remoteProtocolVersion = 1

	procConnectOpen        = 1
	procAuthList           = 66
	procStorageVolDownload = 209

	msgCall   = 0
	msgReply  = 1
	msgStream = 3

	statusOK       = 0
	statusError    = 1
	statusContinue = 2

	// maxPacket is libvirt's VIR_NET_MESSAGE_MAX (plus the header): a
	// length above it means the stream is garbage.
	maxPacket = 32<<20 + 24
)

type rpcHeader struct {
	Program, Version, Procedure, Type uint32
	Serial                            int32
	Status                            uint32
}

// rpcConn is one raw connection to libvirtd.
type rpcConn struct {
	c      net.Conn
	serial int32
	// early are stream packets that came before their call's reply:
	// libvirtd may start a download's data before it has sent the reply.
	early []rpcPacket
}

type rpcPacket struct {
	h rpcHeader
	p []byte
}

func (r *rpcConn) send(h rpcHeader, payload []byte) error {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(4+24+len(payload)))
	_ = binary.Write(&b, binary.BigEndian, h)
	b.Write(payload)
	_, err := r.c.Write(b.Bytes())
	return err
}

func (r *rpcConn) recv() (rpcHeader, []byte, error) {
	var n uint32
	var h rpcHeader
	if err := binary.Read(r.c, binary.BigEndian, &n); err != nil {
		return h, nil, err
	}
	if n < 28 || n > maxPacket {
		return h, nil, fmt.Errorf("libvirt RPC: packet of %d bytes", n)
	}
	if err := binary.Read(r.c, binary.BigEndian, &h); err != nil {
		return h, nil, err
	}
	payload := make([]byte, n-28)
	_, err := io.ReadFull(r.c, payload)
	return h, payload, err
}

// next is the next packet: one that came early, else one from the socket.
func (r *rpcConn) next() (rpcHeader, []byte, error) {
	if len(r.early) > 0 {
		pk := r.early[0]
		r.early = r.early[1:]
		return pk.h, pk.p, nil
	}
	return r.recv()
}

// call sends a call and returns its reply's payload, or the error libvirt
// answered with (a golibvirt.Error, which mapError maps).
func (r *rpcConn) call(proc uint32, payload []byte) (int32, []byte, error) {
	r.serial++
	serial := r.serial
	if err := r.send(rpcHeader{remoteProgram, remoteProtocolVersion, proc, msgCall, serial, statusOK}, payload); err != nil {
		return serial, nil, err
	}
	for {
		h, p, err := r.recv()
		if err != nil {
			return serial, nil, err
		}
		if h.Serial == serial && h.Type == msgStream {
			r.early = append(r.early, rpcPacket{h, p})
			continue
		}
		if h.Serial != serial || h.Type != msgReply {
			continue // an event or keepalive: not ours
		}
		if h.Status == statusError {
			return serial, nil, decodeRemoteError(p)
		}
		return serial, p, nil
	}
}

// xdrString appends s as an XDR string.
func xdrString(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.WriteString(s)
	b.Write(make([]byte, (4-len(s)%4)%4))
}

// decodeRemoteError reads a remote_error: code, domain, then an optional
// message string.
func decodeRemoteError(p []byte) error {
	var head struct {
		Code, Domain int32
		HasMessage   uint32
		Len          uint32
	}
	if err := binary.Read(bytes.NewReader(p), binary.BigEndian, &head); err != nil {
		return fmt.Errorf("libvirt RPC: undecodable error (%d bytes)", len(p))
	}
	msg := ""
	if head.HasMessage != 0 && int(head.Len) <= len(p)-16 {
		msg = string(p[16 : 16+head.Len])
	}
	return golibvirt.Error{Code: uint32(head.Code), Message: msg}
}

// rawDownload reads length bytes of vol from offset through the libvirtd
// at uri, on a connection of its own (see above), within timeout and ctx.
// Transports other than unix and tcp are ErrNotSupported.
func rawDownload(ctx context.Context, uri string, vol golibvirt.StorageVol, offset, length uint64, timeout time.Duration) ([]byte, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	dialer, ok := dialerFor(u)
	if !ok {
		return nil, fmt.Errorf("libvirt: downloading volumes through %s: %w", u.Scheme, peers.ErrNotSupported)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := dialer.Dial()
	if err != nil {
		return nil, fmt.Errorf("libvirt: connecting to %s: %w: %w", uri, peers.ErrUnavailable, err)
	}
	defer c.Close()
	// ctx ending cuts the socket, which ends any read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(timeout))
	r := &rpcConn{c: c}
	out, err := r.download(golibvirt.RemoteURI(u), vol, offset, length)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, fmt.Errorf("libvirt: download volume %s: no answer in %s: %w", vol.Name, timeout, peers.ErrUnavailable)
	}
	return out, err
}

func (r *rpcConn) download(uri golibvirt.ConnectURI, vol golibvirt.StorageVol, offset, length uint64) ([]byte, error) {
	// libvirt wants auth-list before the open, even with no authentication
	// (root on the local socket, auth_tcp="none").
	if _, _, err := r.call(procAuthList, nil); err != nil {
		return nil, mapError("auth list", err)
	}
	var open bytes.Buffer
	_ = binary.Write(&open, binary.BigEndian, uint32(1)) // the name is present
	xdrString(&open, string(uri))
	_ = binary.Write(&open, binary.BigEndian, uint32(0)) // flags
	if _, _, err := r.call(procConnectOpen, open.Bytes()); err != nil {
		return nil, mapError("connect open", err)
	}
	var args bytes.Buffer
	xdrString(&args, vol.Pool)
	xdrString(&args, vol.Name)
	xdrString(&args, vol.Key)
	_ = binary.Write(&args, binary.BigEndian, offset)
	_ = binary.Write(&args, binary.BigEndian, length)
	_ = binary.Write(&args, binary.BigEndian, uint32(0)) // flags
	serial, _, err := r.call(procStorageVolDownload, args.Bytes())
	if err != nil {
		return nil, mapError("download volume "+vol.Name, err)
	}
	// Data comes as stream packets (CONTINUE) until the end of the data:
	// an empty CONTINUE or an OK. The client then finishes the stream
	// (an empty OK of its own) and libvirtd confirms: a stream cut short
	// instead leaves libvirtd to clean up after it, and the next download
	// of the same file could then come back empty or not at all.
	var out bytes.Buffer
	for done := false; !done; {
		h, p, err := r.next()
		if err != nil {
			return nil, mapError("download volume "+vol.Name, err)
		}
		if h.Serial != serial || h.Type != msgStream {
			continue
		}
		switch {
		case h.Status == statusError:
			return nil, mapError("download volume "+vol.Name, decodeRemoteError(p))
		case h.Status == statusContinue && len(p) > 0:
			out.Write(p)
		default:
			done = true
		}
	}
	if err := r.finishStream(serial); err != nil {
		return nil, mapError("finishing the download of volume "+vol.Name, err)
	}
	b := out.Bytes()
	if uint64(len(b)) > length {
		b = b[:length]
	}
	return b, nil
}

// finishStream ends stream serial from the client's side and waits for
// libvirtd's confirmation.
func (r *rpcConn) finishStream(serial int32) error {
	if err := r.send(rpcHeader{remoteProgram, remoteProtocolVersion, procStorageVolDownload, msgStream, serial, statusOK}, nil); err != nil {
		return err
	}
	for {
		h, p, err := r.recv()
		if err != nil {
			return err
		}
		if h.Serial != serial {
			continue
		}
		switch h.Status {
		case statusError:
			return decodeRemoteError(p)
		case statusOK:
			return nil
		}
	}
}
