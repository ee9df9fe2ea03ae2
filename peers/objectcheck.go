package peers

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Swift's limits on names and user metadata (its constraints.py), which
// the Objects contract keeps.
const (
	MaxContainerNameBytes = 256
	MaxObjectNameBytes    = 1024
	MaxObjectMetaCount    = 90
	MaxObjectMetaKeyBytes = 128
	MaxObjectMetaValBytes = 256
	MaxObjectMetaBytes    = 4096
	// MaxListLimit is the most entries one ListObjects call returns.
	MaxListLimit = 10000
)

// CheckContainerName refuses a container name outside the contract:
// ErrInvalid saying why.
func CheckContainerName(name string) error {
	if err := checkName("container", name, MaxContainerNameBytes); err != nil {
		return err
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("container name %q holds '/': %w", name, ErrInvalid)
	}
	return nil
}

// CheckObjectName refuses an object name outside the contract.
func CheckObjectName(name string) error {
	return checkName("object", name, MaxObjectNameBytes)
}

func checkName(kind, name string, maxBytes int) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty: %w", kind, ErrInvalid)
	case len(name) > maxBytes:
		return fmt.Errorf("%s name is %d bytes; at most %d allowed: %w", kind, len(name), maxBytes, ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s name is not valid UTF-8: %w", kind, ErrInvalid)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("%s name holds a NUL byte: %w", kind, ErrInvalid)
	}
	return nil
}

// CheckObjectMetadata refuses user metadata beyond Swift's limits.
func CheckObjectMetadata(m map[string]string) error {
	if len(m) > MaxObjectMetaCount {
		return fmt.Errorf("object metadata has %d items; at most %d allowed: %w", len(m), MaxObjectMetaCount, ErrInvalid)
	}
	total := 0
	for k, v := range m {
		switch {
		case k == "" || len(k) > MaxObjectMetaKeyBytes:
			return fmt.Errorf("object metadata key %q: want 1 to %d bytes: %w", k, MaxObjectMetaKeyBytes, ErrInvalid)
		case strings.ToLower(k) != k:
			return fmt.Errorf("object metadata key %q: keys are lower case: %w", k, ErrInvalid)
		case len(v) > MaxObjectMetaValBytes:
			return fmt.Errorf("object metadata %q: value longer than %d bytes: %w", k, MaxObjectMetaValBytes, ErrInvalid)
		}
		total += len(k) + len(v)
	}
	if total > MaxObjectMetaBytes {
		return fmt.Errorf("object metadata is %d bytes; at most %d allowed: %w", total, MaxObjectMetaBytes, ErrInvalid)
	}
	return nil
}

// CheckListOptions refuses a listing limit outside 0..MaxListLimit.
func CheckListOptions(o ObjectListOptions) error {
	if o.Limit < 0 || o.Limit > MaxListLimit {
		return fmt.Errorf("listing limit %d: want 0 to %d: %w", o.Limit, MaxListLimit, ErrInvalid)
	}
	return nil
}

// Span resolves r against an object of size bytes: where the range starts
// and how many bytes it holds. A range starting at or past the end (any
// range of an empty object, a zero suffix) is ErrRangeNotSatisfiable; a
// malformed one (negative fields, Last before First, Suffix with First or
// Last set) ErrInvalid.
func (r ByteRange) Span(size int64) (offset, length int64, err error) {
	switch {
	case r.Suffix < 0 || r.First < 0:
		return 0, 0, fmt.Errorf("byte range %+v: negative: %w", r, ErrInvalid)
	case r.Suffix > 0 && (r.First != 0 || r.Last != 0):
		return 0, 0, fmt.Errorf("byte range %+v: a suffix range has no first or last byte: %w", r, ErrInvalid)
	case r.Suffix > 0:
		if size == 0 {
			return 0, 0, fmt.Errorf("the last %d bytes of an empty object: %w", r.Suffix, ErrRangeNotSatisfiable)
		}
		n := min(r.Suffix, size)
		return size - n, n, nil
	case r.Last >= 0 && r.Last < r.First:
		return 0, 0, fmt.Errorf("byte range %d-%d ends before it starts: %w", r.First, r.Last, ErrInvalid)
	case r.First >= size:
		return 0, 0, fmt.Errorf("byte range starting at %d of a %d-byte object: %w", r.First, size, ErrRangeNotSatisfiable)
	}
	last := size - 1
	if r.Last >= 0 {
		last = min(r.Last, last)
	}
	return r.First, last - r.First + 1, nil
}
