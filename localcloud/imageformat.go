package localcloud

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// Format checking: an upload's bytes must be what its disk_format says, as
// Glance checks them since the 2024 format-inspector fixes (OSSA-2024-001,
// OSSA-2024-002). The check runs on the stream: a formatInspector sits in
// the upload's writer chain, keeps the first headSize bytes and the last
// 512, and refuses the upload as soon as the head contradicts the declared
// format, long before the whole image has been read. Nothing else of the
// image is held in memory.
//
// What is checked, per declared format:
//   - qcow2: "QFI\xfb" and version 2 or 3 at the start; no backing file and
//     no external data file (either lets a guest read host files).
//   - vmdk: a sparse extent ("KDMV") whose embedded descriptor says
//     createType monolithicSparse or streamOptimized (one self-contained
//     file). A bare descriptor file is a vmdk, but refused: its extents are
//     other files.
//   - vhdx: "vhdxfile" at the start.
//   - vdi: the 0xbeda107f signature at offset 64 (after the "<<< ... >>>"
//     banner).
//   - vhd: the "conectix" footer, copied at the start of a dynamic disk or
//     at the end of a fixed one.
//   - iso: "CD001" at 0x8001 (the primary volume descriptor).
//   - ploop: "WithoutFreeSpace" (or the v2 "WithouFreSpacExt") at the start.
//   - raw, ami, ari, aki: anything, except bytes that are a qcow2, vmdk,
//     vhdx, vdi, vhd or ploop image. A qcow2 declared raw would be booted as
//     raw by one consumer and as qcow2 (with its backing file) by another,
//     the known Glance security issue; Glance refuses it too. An ISO
//     declared raw is accepted: hybrid ISOs are routinely written to disks.
//
// Every other container format (a qcow2 image that also carries "CD001" at
// 0x8001, say) is refused for a declared iso as well: one image, one format.

// headSize is how much of an upload's start the inspector keeps: enough for
// the ISO's volume descriptor at 0x8001 and a vmdk's embedded descriptor.
const headSize = 64 << 10

// vhdFooterSize is the size of a VHD footer.
const vhdFooterSize = 512

// Signatures.
var (
	qcow2Magic     = []byte("QFI\xfb")
	vmdkMagic      = []byte("KDMV")
	vhdxMagic      = []byte("vhdxfile")
	vhdMagic       = []byte("conectix")
	isoMagic       = []byte("CD001")
	ploopMagics    = [][]byte{[]byte("WithoutFreeSpace"), []byte("WithouFreSpacExt")}
	vdiSignature   = uint32(0xbeda107f)
	vmdkDescriptor = []byte("# Disk DescriptorFile")
)

const (
	vdiSignatureOffset = 64
	isoMagicOffset     = 0x8001
)

// vmdkAllowedCreateTypes are the single-file vmdk variants, Glance's
// default vmdk_allowed_types.
var vmdkAllowedCreateTypes = []string{"monolithicSparse", "streamOptimized"}

// detectFormats returns the structured formats (and iso) whose signature
// head carries, in a fixed order. A vhd is recognised here only by the copy
// of its footer at the start (a dynamic disk).
func detectFormats(head []byte) []string {
	var out []string
	if bytes.HasPrefix(head, qcow2Magic) {
		out = append(out, "qcow2")
	}
	if bytes.HasPrefix(head, vmdkMagic) || isVMDKDescriptor(head) {
		out = append(out, "vmdk")
	}
	if bytes.HasPrefix(head, vhdxMagic) {
		out = append(out, "vhdx")
	}
	if len(head) >= vdiSignatureOffset+4 && binary.LittleEndian.Uint32(head[vdiSignatureOffset:]) == vdiSignature {
		out = append(out, "vdi")
	}
	if bytes.HasPrefix(head, vhdMagic) {
		out = append(out, "vhd")
	}
	if len(head) >= isoMagicOffset+len(isoMagic) && bytes.Equal(head[isoMagicOffset:isoMagicOffset+len(isoMagic)], isoMagic) {
		out = append(out, "iso")
	}
	for _, m := range ploopMagics {
		if bytes.HasPrefix(head, m) {
			out = append(out, "ploop")
			break
		}
	}
	return out
}

// isVMDKDescriptor reports whether head is a vmdk text descriptor: it
// starts with the descriptor banner, or is text with a createType line
// before any NUL byte.
func isVMDKDescriptor(head []byte) bool {
	if bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), vmdkDescriptor) {
		return true
	}
	text := head[:min(len(head), 4096)]
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	for line := range strings.Lines(string(text)) {
		if strings.HasPrefix(strings.TrimSpace(line), "createType=") {
			return true
		}
	}
	return false
}

// formatError is an upload whose bytes contradict its disk_format.
func formatError(declared, format string, args ...any) error {
	return errf(peers.ErrInvalid, "disk_format %s: %s", declared, fmt.Sprintf(format, args...))
}

// checkHead checks the start of an upload against the declared format.
// head is the first headSize bytes, or all of them when eof. For a vhd
// without a footer copy at the start the verdict waits for the end: it
// returns deferTail.
func checkHead(declared string, head []byte, eof bool) (deferTail bool, err error) {
	found := detectFormats(head)
	others := slices.DeleteFunc(slices.Clone(found), func(f string) bool { return f == declared || f == "iso" })
	switch declared {
	case "raw", "ami", "ari", "aki":
		if len(others) > 0 {
			return false, formatError(declared, "the data is a %s image; declare its real format (Glance refuses a structured image declared as %s)", others[0], declared)
		}
		return false, nil
	case "iso":
		if len(others) > 0 {
			return false, formatError(declared, "the data is a %s image", others[0])
		}
		if !slices.Contains(found, "iso") {
			return false, formatError(declared, "no ISO 9660 volume descriptor (CD001 at offset 0x8001)%s", shortNote(head, eof))
		}
		return false, nil
	}
	if len(others) > 0 {
		return false, formatError(declared, "the data is a %s image", others[0])
	}
	if declared == "vhd" && !slices.Contains(found, "vhd") {
		return true, nil // a fixed disk: its footer is at the end
	}
	if !slices.Contains(found, declared) {
		return false, formatError(declared, "the data does not start with a %s header%s", declared, shortNote(head, eof))
	}
	switch declared {
	case "qcow2":
		return false, checkQcow2(head)
	case "vmdk":
		return false, checkVMDK(head)
	}
	return false, nil
}

func shortNote(head []byte, eof bool) string {
	if eof && len(head) < headSize {
		return fmt.Sprintf(" (the upload is only %d bytes)", len(head))
	}
	return ""
}

// checkTail checks a vhd whose start carries no footer copy: its last 512
// bytes must be the footer (511 on images of some old tools).
func checkTail(declared string, tail []byte) error {
	if len(tail) >= vhdFooterSize && bytes.HasPrefix(tail[len(tail)-vhdFooterSize:], vhdMagic) {
		return nil
	}
	if len(tail) >= vhdFooterSize-1 && bytes.HasPrefix(tail[len(tail)-(vhdFooterSize-1):], vhdMagic) {
		return nil
	}
	return formatError(declared, "no VHD footer (conectix) at the start or in the last 512 bytes")
}

// qcow2 header fields.
const (
	qcow2IncompatDataFile = 1 << 2 // external data file
	qcow2HeaderV2Len      = 72
	qcow2HeaderV3Len      = 104
)

// checkQcow2 checks a qcow2 header for what Glance refuses: an unknown
// version, a backing file, an external data file.
func checkQcow2(head []byte) error {
	if len(head) < qcow2HeaderV2Len {
		return formatError("qcow2", "header truncated at %d bytes", len(head))
	}
	be := binary.BigEndian
	version := be.Uint32(head[4:])
	if version != 2 && version != 3 {
		return formatError("qcow2", "unknown qcow2 version %d", version)
	}
	if clusterBits := be.Uint32(head[20:]); clusterBits < 9 || clusterBits > 21 {
		return formatError("qcow2", "cluster_bits %d out of range", clusterBits)
	}
	if be.Uint64(head[8:]) != 0 {
		return formatError("qcow2", "the image has a backing file, which could expose the host's files; flatten it first (qemu-img convert)")
	}
	if version == 3 {
		if len(head) < qcow2HeaderV3Len {
			return formatError("qcow2", "version 3 header truncated at %d bytes", len(head))
		}
		if be.Uint64(head[72:])&qcow2IncompatDataFile != 0 {
			return formatError("qcow2", "the image uses an external data file, which could expose the host's files")
		}
	}
	return nil
}

// checkVMDK accepts only a sparse extent whose embedded descriptor names a
// single-file createType; a bare descriptor points at other files.
func checkVMDK(head []byte) error {
	if !bytes.HasPrefix(head, vmdkMagic) {
		return formatError("vmdk", "a descriptor file without its extents; upload a single-file vmdk (%s)", strings.Join(vmdkAllowedCreateTypes, " or "))
	}
	if len(head) < 44 {
		return formatError("vmdk", "sparse extent header truncated at %d bytes", len(head))
	}
	le := binary.LittleEndian
	off, size := le.Uint64(head[28:])*512, le.Uint64(head[36:])*512
	if off == 0 || size == 0 {
		return formatError("vmdk", "the sparse extent has no embedded descriptor, so its createType is unknown")
	}
	if off+size > uint64(len(head)) {
		// Trim to what arrived: the createType line comes first.
		if off >= uint64(len(head)) {
			return formatError("vmdk", "the embedded descriptor at offset %d is beyond the first %d bytes", off, headSize)
		}
		size = uint64(len(head)) - off
	}
	desc := head[off : off+size]
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	createType := ""
	for line := range strings.Lines(string(desc)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "createType="); ok {
			createType = strings.Trim(v, `"`)
			break
		}
	}
	if !slices.Contains(vmdkAllowedCreateTypes, createType) {
		return formatError("vmdk", "createType %q; want %s (a single self-contained file)", createType, strings.Join(vmdkAllowedCreateTypes, " or "))
	}
	return nil
}

// formatInspector checks an upload's bytes against its declared disk_format
// as they stream past. It is an io.Writer; once the head contradicts the
// format, Write fails, which stops the copy.
type formatInspector struct {
	declared  string
	head      []byte
	tail      []byte // the last vhdFooterSize bytes seen, once deferTail
	decided   bool
	deferTail bool
	err       error
}

func newFormatInspector(declared string) *formatInspector {
	return &formatInspector{declared: declared, head: make([]byte, 0, headSize)}
}

func (fi *formatInspector) Write(p []byte) (int, error) {
	if fi.err != nil {
		return 0, fi.err
	}
	rest := p
	if !fi.decided {
		k := min(len(p), headSize-len(fi.head))
		fi.head, rest = append(fi.head, p[:k]...), p[k:]
		if len(fi.head) == headSize {
			fi.decide(false)
			if fi.err != nil {
				return 0, fi.err
			}
		}
	}
	if fi.deferTail {
		fi.keepTail(rest)
	}
	return len(p), nil
}

func (fi *formatInspector) decide(eof bool) {
	fi.decided = true
	fi.deferTail, fi.err = checkHead(fi.declared, fi.head, eof)
	if fi.deferTail {
		// The tail so far is the end of the head.
		fi.tail = append(make([]byte, 0, vhdFooterSize), fi.head[max(0, len(fi.head)-vhdFooterSize):]...)
	}
}

// keepTail keeps the last vhdFooterSize bytes of the stream.
func (fi *formatInspector) keepTail(p []byte) {
	if len(p) >= vhdFooterSize {
		fi.tail = append(fi.tail[:0], p[len(p)-vhdFooterSize:]...)
		return
	}
	if drop := len(fi.tail) + len(p) - vhdFooterSize; drop > 0 {
		fi.tail = append(fi.tail[:0], fi.tail[drop:]...)
	}
	fi.tail = append(fi.tail, p...)
}

// finish gives the verdict once the stream has ended.
func (fi *formatInspector) finish() error {
	if fi.err != nil {
		return fi.err
	}
	if !fi.decided {
		fi.decide(true)
		if fi.err != nil {
			return fi.err
		}
	}
	if fi.deferTail {
		fi.err = checkTail(fi.declared, fi.tail)
	}
	return fi.err
}
