package libvirt

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file (run with -update if intended):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

var testNames = names{prefix: "cloudmux-", pool: "cloudmux", path: "/var/lib/cloudmux/pool"}

func testSpec() localcloud.DomainSpec {
	return localcloud.DomainSpec{
		ID: "6f1c2d4e-0000-4000-8000-000000000001", Name: "web <1> & \"friends\"\nline two", VCPUs: 2, RAMMiB: 512,
		Disks: []localcloud.Disk{
			{VolumeID: "6f1c2d4e-0000-4000-8000-000000000001-disk", Device: "vda"},
			{VolumeID: "0a0b0c0d-0000-4000-8000-0000000000ff", Device: "vdb"},
		},
		NICs:    []localcloud.NIC{{PortID: "p-1", NetworkID: "n-1", MAC: "fa:16:3e:00:00:01", IPs: []string{"10.0.0.5/24"}, Gateway: "10.0.0.1"}},
		KeyName: "mykey", PublicKey: "ssh-ed25519 AAAA test@example\n",
		UserData: []byte("#!/bin/sh\necho hello\n"),
		Metadata: map[string]string{
			"localcloud.project": "proj", "localcloud.flavor_id": "2", "localcloud.image_id": "img-1",
			"server.cloudmux.broker_id": "b-1", "server.role": "a<b",
		},
	}
}

// TestDomainXML pins the domain XML: TCG, virtio disks from the pool with
// their formats, the read-only config drive, virtio NICs on the networks,
// the serial console logged into the pool, escaped metadata.
func TestDomainXML(t *testing.T) {
	eps := []nicEndpoints{{Switch: netip.MustParseAddrPort("127.0.0.1:40001"), NIC: netip.MustParseAddrPort("127.0.0.1:40002")}}
	x, err := buildDomainXML(testNames, testSpec(), eps, domainOptions{
		Arch: "x86_64", Machine: "pc", ConfigDrive: true,
		DiskFormats: map[string]string{"6f1c2d4e-0000-4000-8000-000000000001-disk": "qcow2", "0a0b0c0d-0000-4000-8000-0000000000ff": "raw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "domain.xml", x+"\n")

	// What goes in comes back out: the cloud rebuilds from this.
	pd, err := parseDomainXML(x)
	if err != nil {
		t.Fatal(err)
	}
	m := pd.Metadata.Server
	if m == nil || m.ID != testSpec().ID || m.Name != testSpec().Name || m.KeyName != "mykey" || len(m.Metadata) != 5 || len(m.Disks) != 2 || len(m.NICs) != 1 {
		t.Fatalf("parsed metadata = %+v", m)
	}
	if got, ok := endpointsOf(pd); !ok || len(got) != 1 || got[0] != eps[0] {
		t.Fatalf("endpointsOf = %v, %v; want %v", got, ok, eps)
	}
	if len(pd.Devices.Disks) != 3 || pd.Devices.Disks[2].ReadOnly == nil || pd.Devices.Disks[2].Target.Dev != configDriveDevice {
		t.Fatalf("parsed disks = %+v; want two disks and the read-only config drive", pd.Devices.Disks)
	}
}

func TestVolumeXML(t *testing.T) {
	v, err := buildVolumeXML("cloudmux-x-disk", 1<<30, "qcow2", "/var/lib/cloudmux/pool/cloudmux-image-i", "raw")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "volume.xml", v+"\n"+poolXML("cloudmux", "/var/lib/cloudmux/pool"))
	if got := volumeFormat(v); got != "qcow2" {
		t.Fatalf("volumeFormat = %q", got)
	}
}

func TestRemoveDiskXML(t *testing.T) {
	dx := "<domain><devices>\n    <disk type='volume' device='disk'>\n      <source pool='p' volume='cloudmux-a'/>\n    </disk>\n    <disk type='volume' device='disk'>\n      <source pool='p' volume='cloudmux-b'/>\n    </disk>\n  </devices></domain>"
	got, err := removeDiskXML(dx, "cloudmux-a")
	if err != nil || strings.Contains(got, "cloudmux-a") || !strings.Contains(got, "cloudmux-b") {
		t.Fatalf("removeDiskXML = %q, %v", got, err)
	}
	if _, err := removeDiskXML(dx, "cloudmux-c"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("removeDiskXML of an absent disk = %v, want ErrNotFound", err)
	}
}

// TestMapError pins how libvirt's errors become the peers sentinels.
func TestMapError(t *testing.T) {
	lv := func(code golibvirt.ErrorNumber) error {
		return golibvirt.Error{Code: uint32(code), Message: fmt.Sprintf("libvirt error %d", code)}
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"NoDomain", lv(golibvirt.ErrNoDomain), peers.ErrNotFound},
		{"NoStorageVol", lv(golibvirt.ErrNoStorageVol), peers.ErrNotFound},
		{"NoStoragePool", lv(golibvirt.ErrNoStoragePool), peers.ErrNotFound},
		{"NoNetwork", lv(golibvirt.ErrNoNetwork), peers.ErrNotFound},
		{"OperationInvalid", lv(golibvirt.ErrOperationInvalid), peers.ErrConflict},
		{"DomExist", lv(golibvirt.ErrDomExist), peers.ErrConflict},
		{"NetworkExist", lv(golibvirt.ErrNetworkExist), peers.ErrConflict},
		{"StorageVolExist", lv(golibvirt.ErrStorageVolExist), peers.ErrConflict},
		{"XMLError", lv(golibvirt.ErrXMLError), peers.ErrInvalid},
		{"InvalidArg", lv(golibvirt.ErrInvalidArg), peers.ErrInvalid},
		{"NoSupport", lv(golibvirt.ErrNoSupport), peers.ErrNotSupported},
		{"RPC", lv(golibvirt.ErrRPC), peers.ErrUnavailable},
		{"NoConnect", lv(golibvirt.ErrNoConnect), peers.ErrUnavailable},
		{"Wrapped", fmt.Errorf("outer: %w", lv(golibvirt.ErrNoDomain)), peers.ErrNotFound},
		{"Interrupted", golibvirt.ErrInterrupted, peers.ErrUnavailable},
		{"EOF", io.EOF, peers.ErrUnavailable},
		{"Refused", fmt.Errorf("dial unix: %w", syscall.ECONNREFUSED), peers.ErrUnavailable},
		{"Reset", syscall.ECONNRESET, peers.ErrUnavailable},
		{"Other", lv(golibvirt.ErrInternalError), nil},
	}
	all := []error{peers.ErrNotFound, peers.ErrConflict, peers.ErrInvalid, peers.ErrNotSupported, peers.ErrUnavailable}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mapError("test op", tc.err)
			if !errors.Is(got, tc.err) {
				t.Fatalf("mapError lost the cause: %v", got)
			}
			for _, s := range all {
				if errors.Is(got, s) != (s == tc.want) {
					t.Fatalf("mapError(%v) = %v; errors.Is(%v) = %v, want only %v", tc.err, got, s, errors.Is(got, s), tc.want)
				}
			}
		})
	}
	if mapError("x", nil) != nil {
		t.Fatal("mapError(nil) != nil")
	}
}
