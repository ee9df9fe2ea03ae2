package backup

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Format names the file format in its header; Version is bumped when a
// reader of the previous version could not restore a new file.
const (
	Format  = "cloudmux-state"
	Version = 1
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrCorrupt: the file is not a complete, unaltered backup.
	ErrCorrupt = errors.New("backup file is corrupt or truncated")
	// ErrNotEmpty: restore refuses a store that already holds keys, so it
	// never merges two installations' state or overwrites live records.
	ErrNotEmpty = errors.New("the target store is not empty")
)

// Header is the file's first line.
type Header struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// StoreIndex is the store's index when the keys were read.
	StoreIndex uint64 `json:"store_index"`
	// Producer is the cloudmux version that wrote the file.
	Producer string `json:"producer,omitempty"`
}

// record is one key's line.
type record struct {
	Key   string `json:"key"`
	Value []byte `json:"value"` // base64 in JSON
}

// trailer is the last line; its presence proves the file is whole.
type trailer struct {
	End           bool   `json:"end"`
	Keys          int    `json:"keys"`
	SkippedLeased int    `json:"skipped_leased"`
	SHA256        string `json:"sha256"`
}

// Summary reports what a backup or restore did.
type Summary struct {
	Header        Header
	Keys          int
	Bytes         int64 // sum of value sizes
	SkippedLeased int
	SHA256        string
}

// Save reads every key of store in one List and writes them to w. Keys held
// by a lease are skipped (see the package doc).
func Save(ctx context.Context, store registry.Store, w io.Writer, producer string) (Summary, error) {
	kvs, index, err := store.List(ctx, "")
	if err != nil {
		return Summary{}, fmt.Errorf("read the store: %w", err)
	}
	zw := gzip.NewWriter(w)
	bw := bufio.NewWriterSize(zw, 256<<10)
	enc := json.NewEncoder(bw)
	sum := Summary{Header: Header{Format: Format, Version: Version, Created: time.Now().UTC(), StoreIndex: index, Producer: producer}}
	if err := enc.Encode(sum.Header); err != nil {
		return Summary{}, err
	}
	h := sha256.New()
	for _, kv := range kvs {
		if kv.Session != "" {
			sum.SkippedLeased++
			continue
		}
		digest(h, kv.Key, kv.Value)
		if err := enc.Encode(record{Key: kv.Key, Value: kv.Value}); err != nil {
			return Summary{}, err
		}
		sum.Keys++
		sum.Bytes += int64(len(kv.Value))
	}
	sum.SHA256 = hex.EncodeToString(h.Sum(nil))
	if err := enc.Encode(trailer{End: true, Keys: sum.Keys, SkippedLeased: sum.SkippedLeased, SHA256: sum.SHA256}); err != nil {
		return Summary{}, err
	}
	if err := bw.Flush(); err != nil {
		return Summary{}, err
	}
	if err := zw.Close(); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// digest feeds one key and value into h, length-prefixed so that no two
// different key/value sequences hash the same way.
func digest(h hash.Hash, key string, value []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	binary.BigEndian.PutUint64(n[:], uint64(len(value)))
	h.Write(n[:])
	h.Write(value)
}

// Read parses and checks a whole backup file without writing anything: the
// header's format and version, every line, and the trailer's count and
// digest. Restore calls it first, so a bad file changes nothing.
func Read(r io.Reader) (Summary, []registry.KV, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Summary{}, nil, fmt.Errorf("%w: not gzip (%v)", ErrCorrupt, err)
	}
	defer zr.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(zr, 256<<10))
	var sum Summary
	if err := dec.Decode(&sum.Header); err != nil {
		return Summary{}, nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if sum.Header.Format != Format {
		return Summary{}, nil, fmt.Errorf("%w: format %q, want %q", ErrCorrupt, sum.Header.Format, Format)
	}
	if sum.Header.Version != Version {
		return Summary{}, nil, fmt.Errorf("backup format version %d: this cloudmux reads version %d", sum.Header.Version, Version)
	}
	h := sha256.New()
	var kvs []registry.KV
	seen := map[string]bool{}
	for {
		var line struct {
			record
			trailer
		}
		if err := dec.Decode(&line); err != nil {
			return Summary{}, nil, fmt.Errorf("%w: after %d keys: %v", ErrCorrupt, len(kvs), err)
		}
		if line.End {
			sum.Keys, sum.SkippedLeased, sum.SHA256 = line.Keys, line.SkippedLeased, line.trailer.SHA256
			break
		}
		if err := registry.ValidateKey(line.Key); err != nil {
			return Summary{}, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if seen[line.Key] {
			return Summary{}, nil, fmt.Errorf("%w: key %q twice", ErrCorrupt, line.Key)
		}
		seen[line.Key] = true
		digest(h, line.Key, line.Value)
		kvs = append(kvs, registry.KV{Key: line.Key, Value: line.Value})
		sum.Bytes += int64(len(line.Value))
	}
	if sum.Keys != len(kvs) {
		return Summary{}, nil, fmt.Errorf("%w: the trailer counts %d keys, the file holds %d", ErrCorrupt, sum.Keys, len(kvs))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum.SHA256 {
		return Summary{}, nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Summary{}, nil, fmt.Errorf("%w: data after the trailer", ErrCorrupt)
	}
	return sum, kvs, nil
}

// restoreWorkers bounds concurrent writes: Consul takes each write through
// Raft, so a few in flight hide the round trip without flooding it.
const restoreWorkers = 8

// Restore checks the whole file (Read), refuses a store that holds any key
// (ErrNotEmpty), then creates every key. Each write is create-only (CAS at
// index 0), so a broker that starts against the store mid-restore and
// writes a key first makes the restore fail loudly instead of one side's
// record silently replacing the other's.
func Restore(ctx context.Context, store registry.Store, r io.Reader) (Summary, error) {
	sum, kvs, err := Read(r)
	if err != nil {
		return Summary{}, err
	}
	existing, _, err := store.List(ctx, "")
	if err != nil {
		return Summary{}, fmt.Errorf("read the target store: %w", err)
	}
	if len(existing) > 0 {
		return Summary{}, fmt.Errorf("%w: it holds %d keys (first %q); restore into a fresh Consul or an unused key_prefix", ErrNotEmpty, len(existing), existing[0].Key)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan registry.KV)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range restoreWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for kv := range jobs {
				if _, err := store.CAS(ctx, kv.Key, kv.Value, 0); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("write %q: %w", kv.Key, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for _, kv := range kvs {
		select {
		case jobs <- kv:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return Summary{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	return sum, nil
}
