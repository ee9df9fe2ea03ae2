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
