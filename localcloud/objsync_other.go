//go:build !linux

package localcloud

import "os"

// startWriteback has no portable form; the final fsync does all the work.
func startWriteback(*os.File, int64, int64) {}

// mapChunk has no portable form: the caller reads instead.
func mapChunk(*os.File, int64, int64) (mapping, chunk []byte) { return nil, nil }

func unmapChunk([]byte) {}
