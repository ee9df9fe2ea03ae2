package localcloud

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to start writing a file's range to disk
// without waiting (sync_file_range with SYNC_FILE_RANGE_WRITE), so an
// upload's disk writes overlap its hashing and the final fsync has little
// left to do. Errors are ignored: the fsync that follows is the guarantee.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	_, _, _ = syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
}

// mapChunk maps n bytes of a file from off read-only, to read them
// without a copy, and returns the mapping (for unmapChunk) and those bytes;
// nil when it cannot (the caller reads instead). A chunk at a time, unmapped
// once read, so a large object's pages never sit in the process's RSS.
func mapChunk(f *os.File, off, n int64) (mapping, chunk []byte) {
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	size := off + n - start
	if n <= 0 || int64(int(size)) != size {
		return nil, nil
	}
	b, err := syscall.Mmap(int(f.Fd()), start, int(size), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, nil
	}
	return b, b[off-start:]
}

func unmapChunk(b []byte) {
	if b != nil {
		_ = syscall.Munmap(b)
	}
}
