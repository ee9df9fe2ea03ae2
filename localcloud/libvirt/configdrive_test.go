package libvirt

import (
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/kdomanski/iso9660"

	"github.com/cloudmux/cloudmux/localcloud"
)

// TestConfigDrive reads the built ISO back: label config-2, the OpenStack
// layout cloud-init reads, keys, metadata, user data and network data.
func TestConfigDrive(t *testing.T) {
	spec := testSpec()
	f, size, err := buildConfigDrive(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if size == 0 || size%2048 != 0 {
		t.Fatalf("ISO size %d: want whole 2 KiB sectors", size)
	}
	img, err := iso9660.OpenImage(f)
	if err != nil {
		t.Fatal(err)
	}
	if label, err := img.Label(); err != nil || label != ConfigDriveLabel {
		t.Fatalf("label = %q, %v; want %q", label, err, ConfigDriveLabel)
	}
	files := map[string][]byte{}
	var walk func(dir *iso9660.File, path string)
	walk = func(dir *iso9660.File, path string) {
		children, err := dir.GetChildren()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range children {
			p := path + c.Name()
			if c.IsDir() {
				walk(c, p+"/")
				continue
			}
			b, err := io.ReadAll(c.Reader())
			if err != nil {
				t.Fatal(err)
			}
			files[p] = b
		}
	}
	root, err := img.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	walk(root, "")
	if got := string(files["openstack/latest/user_data"]); got != string(spec.UserData) {
		t.Fatalf("user_data = %q, want %q (files: %v)", got, spec.UserData, keys(files))
	}
	var md MetaData
	if err := json.Unmarshal(files["openstack/latest/meta_data.json"], &md); err != nil {
		t.Fatalf("meta_data.json: %v (files: %v)", err, keys(files))
	}
	if md.UUID != spec.ID || md.Name != spec.Name || md.Hostname != "web-1-friends-line-two" || md.PublicKeys["mykey"] != "ssh-ed25519 AAAA test@example" ||
		md.Meta["role"] != "a<b" || md.Meta["cloudmux.broker_id"] != "b-1" || len(md.Meta) != 2 || md.ProjectID != "proj" {
		t.Fatalf("meta_data.json = %+v", md)
	}
	var nd NetworkData
	if err := json.Unmarshal(files["openstack/latest/network_data.json"], &nd); err != nil {
		t.Fatalf("network_data.json: %v", err)
	}
	if len(nd.Links) != 1 || nd.Links[0].MAC != "fa:16:3e:00:00:01" || len(nd.Networks) != 1 ||
		nd.Networks[0].IPAddress != "10.0.0.5" || nd.Networks[0].Netmask != "255.255.255.0" || nd.Networks[0].Routes[0].Gateway != "10.0.0.1" {
		t.Fatalf("network_data.json = %+v", nd)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConfigDriveHostname: a hostname asked for (Nova 2.90) is the
// guest's; without one it is made of the name.
func TestConfigDriveHostname(t *testing.T) {
	for _, tc := range []struct{ name, asked, want string }{
		{"derived", "", "web-1-friends-line-two"},
		{"asked", "front-1", "front-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec()
			if tc.asked != "" {
				spec.Metadata[localcloud.MetaHostname] = tc.asked
			}
			files, err := configDriveFiles(spec)
			if err != nil {
				t.Fatal(err)
			}
			var md MetaData
			if err := json.Unmarshal(files["openstack/latest/meta_data.json"], &md); err != nil {
				t.Fatal(err)
			}
			if md.Hostname != tc.want {
				t.Fatalf("hostname = %q, want %q", md.Hostname, tc.want)
			}
		})
	}
}
