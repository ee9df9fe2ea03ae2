package localcloud

import (
	"crypto/md5"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"
)

// An upload's bytes go through a small ring of buffers in two stages that
// overlap instead of taking turns: pipeCopy's caller's goroutine reads a
// chunk of the body and takes its CRC-32C, and the writer takes the
// chunk's MD5 and then writes it to the data file. MD5 is the slowest
// step (about 600 MB/s on one core of the benchmark machine, and it
// cannot be split), so with the steps in lock-step (read, then hash and
// write, then read again, as a copy through one buffer does) an upload
// ran at the sum of the read and the rest; piped, on two cores, at the
// pace of the MD5. The chunk is written right after its MD5, by the same
// goroutine, while its bytes are still in that core's cache. At most
// objPipeChunks buffers are in flight, so an upload holds
// objPipeChunks*objPipeChunk bytes whatever its size.
const (
	objPipeChunk  = 256 << 10
	objPipeChunks = 8
)

// objPipeBufs keeps the rings' buffers between uploads.
var objPipeBufs = sync.Pool{New: func() any { return new([objPipeChunk]byte) }}

// pipeSums are what pipeCopy took of the bytes it copied.
type pipeSums struct {
	md5 []byte
	crc uint32
}

// pipeCopy copies src to dst until src's EOF or an error, taking the
// MD5 and CRC-32C of the bytes, and returns how many it read and the
// first error, dst's or src's. After dst fails, no more is read.
func pipeCopy(dst io.Writer, src io.Reader) (int64, pipeSums, error) {
	type chunk struct {
		buf *[objPipeChunk]byte
		n   int
	}
	free, toWrite := make(chan chunk, objPipeChunks), make(chan chunk, objPipeChunks)
	for range objPipeChunks {
		free <- chunk{buf: objPipeBufs.Get().(*[objPipeChunk]byte)}
	}
	sum := md5.New()
	var (
		wg     sync.WaitGroup
		werr   error
		failed atomic.Bool
	)
	wg.Go(func() {
		for c := range toWrite {
			if werr == nil {
				p := c.buf[:c.n]
				_, _ = sum.Write(p) // a hash.Hash never fails
				if _, werr = dst.Write(p); werr != nil {
					failed.Store(true)
				}
			}
			free <- c
		}
	})
	var (
		n   int64
		crc uint32
		err error
	)
	for err == nil && !failed.Load() {
		c := <-free
		// Whole chunks: each handoff may cost a wakeup, dear on a loaded
		// machine.
		c.n, err = fill(src, c.buf[:])
		n += int64(c.n)
		crc = crc32.Update(crc, castagnoli, c.buf[:c.n])
		toWrite <- c
	}
	close(toWrite)
	wg.Wait()
	for range objPipeChunks {
		objPipeBufs.Put((<-free).buf)
	}
	switch {
	case werr != nil:
		return n, pipeSums{}, werr
	case err != io.EOF:
		return n, pipeSums{}, err
	}
	return n, pipeSums{md5: sum.Sum(nil), crc: crc}, nil
}

// fill reads into p until it is full or r fails (io.EOF included): as
// io.ReadFull, but passing r's own error on, an io.ErrUnexpectedEOF of a
// body cut short among them.
func fill(r io.Reader, p []byte) (int, error) {
	k := 0
	for k < len(p) {
		m, err := r.Read(p[k:])
		k += m
		if err != nil {
			return k, err
		}
	}
	return k, nil
}
