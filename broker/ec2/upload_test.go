package ec2_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/ec2"
)

type uploaded struct {
	Location string `xml:"imageLocation"`
	ImageID  string `xml:"imageId"`
	Code     string `xml:"Errors>Error>Code"`
}

// put uploads data to /ec2/upload, signed with payloadHash as
// X-Amz-Content-Sha256 ("" signs without the header).
func (c *client) put(query string, data []byte, payloadHash string) (int, uploaded) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPut, c.url+"upload?"+query, bytes.NewReader(data))
	if err != nil {
		c.t.Fatal(err)
	}
	if payloadHash != "" {
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	if err := ec2.Sign(req, data, c.keys, "RegionOne", "ec2", c.now()); err != nil {
		c.t.Fatal(err)
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) (int, uploaded) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out uploaded
	if err := xml.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("upload answer %d: %v in %s", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, out
}

// TestUploadThenRegister is econe's upload-then-register flow: the bytes
// stream to a peer, the answer's location registers the image.
func TestUploadThenRegister(t *testing.T) {
	te := newTestEnv(t)
	te.Member(t, "rita", "team-r", "reader")
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	rita := te.client(t, te.keysFor(t, "rita", "team-r"))
	data := bytes.Repeat([]byte("disk image bytes "), 4096)
	sum := sha256.Sum256(data)
	goodHash := hex.EncodeToString(sum[:])

	cases := []struct {
		name   string
		c      *client
		query  string
		hash   string
		status int
		code   string
	}{
		{"signed hash", admin, "name=hashed.raw", goodHash, 200, ""},
		{"unsigned payload", admin, "name=unsigned.raw&disk_format=raw", "UNSIGNED-PAYLOAD", 200, ""},
		{"a hash the body does not have", admin, "name=tampered.raw", hex.EncodeToString(make([]byte, 32)), 401, "AuthFailure"},
		{"no payload header", admin, "name=nohash.raw", "", 400, "MissingParameter"},
		{"no name", admin, "disk_format=raw", "UNSIGNED-PAYLOAD", 400, "MissingParameter"},
		{"bad disk format", admin, "name=x&disk_format=floppy", "UNSIGNED-PAYLOAD", 400, "InvalidParameterValue"},
		{"a reader", rita, "name=r.raw", "UNSIGNED-PAYLOAD", 403, "UnauthorizedOperation"},
	}
	var locations []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.t = t
			status, out := tc.c.put(tc.query, data, tc.hash)
			if status != tc.status || out.Code != tc.code {
				t.Fatalf("upload = %d %+v; want %d %s", status, out, tc.status, tc.code)
			}
			if status == 200 {
				locations = append(locations, out.Location)
			}
		})
	}
	admin.t = t
	// Only the good uploads left images: the tampered one was removed.
	var imgs struct {
		IDs    []string `xml:"imagesSet>item>imageId"`
		States []string `xml:"imagesSet>item>imageState"`
	}
	admin.must("DescribeImages", url.Values{"Owner.1": {"self"}}, &imgs)
	if len(imgs.IDs) != 2 || imgs.States[0] != "available" || imgs.States[1] != "available" {
		t.Fatalf("images after uploads = %+v", imgs)
	}
	var reg struct {
		ImageID string `xml:"imageId"`
	}
	admin.must("RegisterImage", url.Values{"ImageLocation": {locations[0]}, "Name": {"registered"}}, &reg)
	var named struct {
		Names []string `xml:"imagesSet>item>name"`
	}
	admin.must("DescribeImages", url.Values{"ImageId.1": {reg.ImageID}}, &named)
	if len(named.Names) != 1 || named.Names[0] != "registered" {
		t.Fatalf("registered = %+v", named)
	}

	t.Run("presigned PUT", func(t *testing.T) {
		u, _ := url.Parse(admin.url + "upload?name=presigned.raw")
		signed, err := ec2.Presign(http.MethodPut, u, admin.keys, "RegionOne", "ec2", time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, signed.String(), bytes.NewReader(data))
		admin.t = t
		if status, out := admin.send(req); status != 200 || out.ImageID == "" {
			t.Fatalf("presigned upload = %d %+v", status, out)
		}
	})
}
