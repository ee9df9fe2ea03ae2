package localcloud

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// Synthetic images: just enough of each format's header for the inspector,
// padded with zeros to n bytes.

func pad(b []byte, n int) []byte {
	out := make([]byte, max(n, len(b)))
	copy(out, b)
	return out
}

// synthQcow2 is a qcow2 header of version 2 or 3, optionally naming a
// backing file or flagging an external data file.
func synthQcow2(version uint32, backing, dataFile bool) []byte {
	h := make([]byte, 104)
	be := binary.BigEndian
	copy(h, "QFI\xfb")
	be.PutUint32(h[4:], version)
	if backing {
		be.PutUint64(h[8:], 104) // backing_file_offset
		be.PutUint32(h[16:], 8)  // backing_file_size
		h = append(h, "base.img"...)
	}
	be.PutUint32(h[20:], 16)    // cluster_bits
	be.PutUint64(h[24:], 1<<30) // size
	if version == 3 {
		if dataFile {
			be.PutUint64(h[72:], 1<<2)
		}
		be.PutUint32(h[96:], 4)    // refcount_order
		be.PutUint32(h[100:], 104) // header_length
	}
	return pad(h, 256<<10)
}

// synthVMDKSparse is a sparse extent with an embedded descriptor of
// createType at sector 1.
func synthVMDKSparse(createType string) []byte {
	h := make([]byte, 512)
	le := binary.LittleEndian
	copy(h, "KDMV")
	le.PutUint32(h[4:], 1)
	le.PutUint64(h[12:], 2048) // capacity, sectors
	le.PutUint64(h[20:], 128)  // grain size
	le.PutUint64(h[28:], 1)    // descriptor offset, sectors
	le.PutUint64(h[36:], 20)   // descriptor size, sectors
	desc := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"" + createType +
		"\"\n\n# Extent description\nRW 2048 SPARSE \"disk.vmdk\"\n"
	return pad(append(h, desc...), 128<<10)
}

const vmdkFlatDescriptor = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
	"# Extent description\nRW 2048 FLAT \"/etc/shadow\" 0\n"

func synthVDI() []byte {
	h := make([]byte, 72)
	copy(h, "<<< QEMU VM Virtual Disk Image >>>\n")
	binary.LittleEndian.PutUint32(h[64:], 0xbeda107f)
	return pad(h, 128<<10)
}

// synthISO has the primary volume descriptor at sector 16.
func synthISO(n int) []byte {
	b := make([]byte, max(n, 0x8800))
	b[0x8000] = 1
	copy(b[0x8001:], "CD001")
	b[0x8006] = 1
	return b[:n]
}

// synthVHDFixed is raw data followed by a VHD footer.
func synthVHDFixed() []byte {
	b := make([]byte, 128<<10+512)
	copy(b[128<<10:], "conectix")
	return b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

type formatCase struct {
	name     string
	declared string
	data     []byte
	// wantErr is a substring of the refusal, or empty for acceptance.
	wantErr string
}

func formatCases() []formatCase {
	qcow2 := synthQcow2(3, false, false)
	qcow2ISO := bytes.Clone(qcow2)
	copy(qcow2ISO[0x8001:], "CD001")
	dynVHD := pad([]byte("conectix"), 64<<10)
	vhdx := pad([]byte("vhdxfile"), 128<<10)
	ploop := pad([]byte("WithoutFreeSpace"), 64<<10)
	return []formatCase{
		{"Qcow2v3", "qcow2", qcow2, ""},
		{"Qcow2v2", "qcow2", synthQcow2(2, false, false), ""},
		{"Qcow2BackingFile", "qcow2", synthQcow2(3, true, false), "backing file"},
		{"Qcow2v2BackingFile", "qcow2", synthQcow2(2, true, false), "backing file"},
		{"Qcow2DataFile", "qcow2", synthQcow2(3, false, true), "external data file"},
		{"Qcow2UnknownVersion", "qcow2", synthQcow2(4, false, false), "version 4"},
		{"Qcow2DeclaredOnZeros", "qcow2", make([]byte, 1<<20), "does not start with a qcow2 header"},
		{"Qcow2DeclaredOnTinyUpload", "qcow2", []byte("QFI"), "does not start with a qcow2 header (the upload is only 3 bytes)"},
		{"Qcow2DeclaredOnVMDK", "qcow2", synthVMDKSparse("monolithicSparse"), "is a vmdk image"},

		{"RawZeros", "raw", make([]byte, 1<<20), ""},
		{"RawRandom", "raw", randomBytes(300 << 10), ""},
		{"RawBootSector", "raw", PlaceholderDisk(), ""},
		{"RawTiny", "raw", []byte("tiny"), ""},
		{"RawEmpty", "raw", nil, ""},
		{"RawHoldingISO", "raw", synthISO(0x9000), ""},
		{"RawHoldingFixedVHD", "raw", synthVHDFixed(), ""},
		{"RawHoldingQcow2", "raw", qcow2, "the data is a qcow2 image"},
		{"RawHoldingVMDK", "raw", synthVMDKSparse("monolithicSparse"), "the data is a vmdk image"},
		{"RawHoldingVMDKDescriptor", "raw", []byte(vmdkFlatDescriptor), "the data is a vmdk image"},
		{"RawHoldingVHDX", "raw", vhdx, "the data is a vhdx image"},
		{"RawHoldingVDI", "raw", synthVDI(), "the data is a vdi image"},
		{"RawHoldingDynamicVHD", "raw", dynVHD, "the data is a vhd image"},
		{"RawHoldingPloop", "raw", ploop, "the data is a ploop image"},
		{"AMIZeros", "ami", make([]byte, 4096), ""},
		{"AKIHoldingQcow2", "aki", qcow2, "the data is a qcow2 image"},
		{"ARIHoldingVDI", "ari", synthVDI(), "the data is a vdi image"},

		{"VMDKMonolithicSparse", "vmdk", synthVMDKSparse("monolithicSparse"), ""},
		{"VMDKStreamOptimized", "vmdk", synthVMDKSparse("streamOptimized"), ""},
		{"VMDKSplitSparse", "vmdk", synthVMDKSparse("twoGbMaxExtentSparse"), `createType "twoGbMaxExtentSparse"`},
		{"VMDKDescriptorFile", "vmdk", []byte(vmdkFlatDescriptor), "descriptor file without its extents"},
		{"VMDKDeclaredOnZeros", "vmdk", make([]byte, 128<<10), "does not start with a vmdk header"},

		{"VHDX", "vhdx", vhdx, ""},
		{"VHDXDeclaredOnQcow2", "vhdx", qcow2, "is a qcow2 image"},
		{"VDI", "vdi", synthVDI(), ""},
		{"VDIDeclaredOnZeros", "vdi", make([]byte, 128<<10), "does not start with a vdi header"},
		{"VHDDynamic", "vhd", dynVHD, ""},
		{"VHDFixed", "vhd", synthVHDFixed(), ""},
		{"VHDFixedSmall", "vhd", pad([]byte("conectix"), 512), ""},
		{"VHDDeclaredOnZeros", "vhd", make([]byte, 128<<10), "no VHD footer"},
		{"VHDDeclaredOnQcow2", "vhd", qcow2, "is a qcow2 image"},

		{"ISO", "iso", synthISO(0x9000), ""},
		{"ISOTruncatedBeforeDescriptor", "iso", synthISO(0x8003), "no ISO 9660 volume descriptor"},
		{"ISODeclaredOnZeros", "iso", make([]byte, 1<<20), "no ISO 9660 volume descriptor"},
		{"ISOThatIsAlsoQcow2", "iso", qcow2ISO, "is a qcow2 image"},
		{"Ploop", "ploop", ploop, ""},
		{"PloopV2", "ploop", pad([]byte("WithouFreSpacExt"), 4096), ""},
		{"PloopDeclaredOnZeros", "ploop", make([]byte, 4096), "does not start with a ploop header"},
	}
}

// inspect streams data through an inspector in chunks of chunk bytes.
func inspect(declared string, data []byte, chunk int) error {
	fi := newFormatInspector(declared)
	for len(data) > 0 {
		k := min(chunk, len(data))
		if _, err := fi.Write(data[:k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return fi.finish()
}

func TestFormatInspector(t *testing.T) {
	for _, tc := range formatCases() {
		t.Run(tc.name, func(t *testing.T) {
			// Chunk sizes that split the head, the ISO descriptor and the
			// VHD footer at odd places.
			for _, chunk := range []int{7, 511, 4096, 100_000, len(tc.data) + 1} {
				err := inspect(tc.declared, tc.data, chunk)
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("%d-byte chunks: declared %s refused: %v", chunk, tc.declared, err)
					}
					continue
				}
				if !errors.Is(err, peers.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%d-byte chunks: declared %s: got %v, want ErrInvalid saying %q", chunk, tc.declared, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "disk_format "+tc.declared) {
					t.Fatalf("refusal %q does not name the declared disk_format %s", err, tc.declared)
				}
			}
		})
	}
}

// TestFormatInspectorRefusesEarly: a contradiction in the head stops the
// stream once the head is in, not at the end.
func TestFormatInspectorRefusesEarly(t *testing.T) {
	fi := newFormatInspector("qcow2")
	chunk := make([]byte, 4096)
	written := 0
	for written < 64<<20 {
		if _, err := fi.Write(chunk); err != nil {
			break
		}
		written += len(chunk)
	}
	if written >= headSize {
		t.Fatalf("the inspector took %d bytes of a non-qcow2 stream; want a refusal within the first %d", written, headSize)
	}
	if _, err := fi.Write(chunk); err == nil {
		t.Fatal("Write after a refusal succeeded")
	}
}

// TestFormatInspectorQemuImg checks images made by qemu-img itself.
func TestFormatInspectorQemuImg(t *testing.T) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img is not on PATH")
	}
	dir := t.TempDir()
	run := func(t *testing.T, args ...string) {
		t.Helper()
		cmd := exec.Command(qemuImg, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cases := []struct {
		name     string
		create   []string // qemu-img arguments; the image is the last but one
		file     string
		declared string
		wantErr  string
	}{
		{"Qcow2", []string{"create", "-f", "qcow2", "a.qcow2", "16M"}, "a.qcow2", "qcow2", ""},
		{"Qcow2Compat010", []string{"create", "-f", "qcow2", "-o", "compat=0.10", "b.qcow2", "16M"}, "b.qcow2", "qcow2", ""},
		{"Qcow2DeclaredRaw", []string{"create", "-f", "qcow2", "c.qcow2", "16M"}, "c.qcow2", "raw", "the data is a qcow2 image"},
		{"Qcow2WithBackingFile", []string{"create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "d.qcow2"}, "d.qcow2", "qcow2", "backing file"},
		{"Qcow2WithDataFile", []string{"create", "-f", "qcow2", "-o", "data_file=e.data", "e.qcow2", "16M"}, "e.qcow2", "qcow2", "external data file"},
		{"VMDK", []string{"create", "-f", "vmdk", "f.vmdk", "16M"}, "f.vmdk", "vmdk", ""},
		{"VMDKStreamOptimized", []string{"create", "-f", "vmdk", "-o", "subformat=streamOptimized", "g.vmdk", "16M"}, "g.vmdk", "vmdk", ""},
		{"VMDKMonolithicFlat", []string{"create", "-f", "vmdk", "-o", "subformat=monolithicFlat", "h.vmdk", "1M"}, "h.vmdk", "vmdk", "descriptor file"},
		{"VMDKDeclaredRaw", []string{"create", "-f", "vmdk", "i.vmdk", "16M"}, "i.vmdk", "raw", "the data is a vmdk image"},
		{"VHDX", []string{"create", "-f", "vhdx", "j.vhdx", "16M"}, "j.vhdx", "vhdx", ""},
		{"VDI", []string{"create", "-f", "vdi", "k.vdi", "16M"}, "k.vdi", "vdi", ""},
		{"VHDDynamic", []string{"create", "-f", "vpc", "l.vhd", "16M"}, "l.vhd", "vhd", ""},
		{"VHDFixed", []string{"create", "-f", "vpc", "-o", "subformat=fixed", "m.vhd", "4M"}, "m.vhd", "vhd", ""},
		{"VHDDynamicDeclaredRaw", []string{"create", "-f", "vpc", "n.vhd", "16M"}, "n.vhd", "raw", "the data is a vhd image"},
		{"Raw", []string{"create", "-f", "raw", "o.raw", "1M"}, "o.raw", "raw", ""},
		{"RawDeclaredQcow2", []string{"create", "-f", "raw", "p.raw", "1M"}, "p.raw", "qcow2", "does not start with a qcow2 header"},
	}
	if err := os.WriteFile(filepath.Join(dir, "base.raw"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, tc.create...)
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			err = inspect(tc.declared, data, 32<<10)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("qemu-img's %s declared %s refused: %v", tc.file, tc.declared, err)
				}
				return
			}
			if !errors.Is(err, peers.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("qemu-img's %s declared %s: got %v, want ErrInvalid saying %q", tc.file, tc.declared, err, tc.wantErr)
			}
		})
	}
}
