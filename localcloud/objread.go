package localcloud

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime/debug"
)

// objReadChunk is what objReader verifies and hands the kernel at a time:
// large enough that the per-chunk syscalls cost nothing beside the bytes.
const objReadChunk = 4 << 20

// objReader reads an object's data file, or one range of it. A full read
// (verify) is checked against the CRC-32C taken beside its MD5 as it was
// written (the MD5 itself would cap every read at MD5's speed): bytes that
// no longer match fail the read before its last chunk is handed out, so
// a corrupt object never reaches its reader whole, nor passes as a clean
// io.EOF.
//
// WriteTo is the fast path (io.Copy takes it): into an io.ReaderFrom (an
// http.ResponseWriter over TCP is one) it checks each chunk in a memory
// mapping of the file, which copies nothing, and then hands the same
// chunk over with the file as the source (a chunk at a time, unmapped
// once checked, so the mapping never holds much), which net/http passes to the
// kernel as sendfile, so the bytes never cross user space. The checksum
// of each chunk is taken before it is sent, so the whole object's is
// known before its last chunk goes.
type objReader struct {
	ctx       context.Context
	f         *os.File
	off, left int64
	verify    bool
	crc, want uint32
	what      string
}

func newObjReader(ctx context.Context, f *os.File, off, n int64, verify bool, want uint32, what string) *objReader {
	return &objReader{ctx: ctx, f: f, off: off, left: n, verify: verify, want: want, what: what}
}

func (r *objReader) Close() error { return r.f.Close() }

func (r *objReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	p = p[:min(int64(len(p)), r.left)]
	n, err := r.f.ReadAt(p, r.off)
	if n < len(p) {
		return 0, r.short(err)
	}
	if err := r.check(p); err != nil {
		return 0, err
	}
	r.off, r.left = r.off+int64(n), r.left-int64(n)
	return n, nil
}

// check adds p, the next chunk to hand out, to the running checksum and,
// when p ends the data, checks the whole.
func (r *objReader) check(p []byte) error {
	if !r.verify {
		return nil
	}
	r.crc = crc32.Update(r.crc, castagnoli, p)
	if int64(len(p)) == r.left && r.crc != r.want {
		return fmt.Errorf("object %s is corrupt: its data's CRC-32C is %08x, %08x when it was stored", r.what, r.crc, r.want)
	}
	return nil
}

// checkMapped is check over a chunk that may be mapped: a data file cut
// short under the mapping faults (SIGBUS), which is made a panic here
// and reported as the corruption it is instead of ending the process.
func (r *objReader) checkMapped(chunk []byte, mapped bool) (err error) {
	if mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if recover() != nil {
				err = r.short(nil)
			}
		}()
	}
	return r.check(chunk)
}

func (r *objReader) short(err error) error {
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("object %s is corrupt: its data ended %d bytes short: %w", r.what, r.left, err)
}

// WriteTo sends what is left to w, by sendfile when w can take the file
// (see objReader); else through one large buffer.
func (r *objReader) WriteTo(w io.Writer) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return io.CopyBuffer(w, struct{ io.Reader }{r}, make([]byte, min(objReadChunk, max(r.left, 1))))
	}
	var buf []byte
	var sent int64
	for r.left > 0 {
		if err := r.ctx.Err(); err != nil {
			return sent, err
		}
		n := min(r.left, objReadChunk)
		if r.verify {
			mapping, chunk := mapChunk(r.f, r.off, n)
			if mapping == nil {
				if buf == nil {
					buf = make([]byte, objReadChunk)
				}
				k, err := r.f.ReadAt(buf[:n], r.off)
				if int64(k) < n {
					return sent, r.short(err)
				}
				chunk = buf[:n]
			}
			err := r.checkMapped(chunk, mapping != nil)
			unmapChunk(mapping)
			if err != nil {
				return sent, err
			}
		}
		if _, err := r.f.Seek(r.off, io.SeekStart); err != nil {
			return sent, err
		}
		k, err := rf.ReadFrom(io.LimitReader(r.f, n))
		sent += k
		if err == nil && k < n {
			err = r.short(nil)
		}
		if err != nil {
			return sent, err
		}
		r.off, r.left = r.off+n, r.left-n
	}
	return sent, nil
}
