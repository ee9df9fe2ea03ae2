package ec2_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
)

// econeUpload builds the request OpenNebula's econe-upload sends (its
// EC2QueryClient.upload_image, curb variant): a multipart POST to the
// endpoint URL whose form fields are the SigV2 parameters (signed by the
// amazon-ec2 gem over the host without its port and the path "/"), then
// the image as the part "file" (application/octet-stream).
func econeUpload(t *testing.T, endpoint, access, secret, method, action string, data []byte, fileFirst bool) *http.Request {
	t.Helper()
	u, _ := url.Parse(endpoint)
	form := url.Values{"Action": {action}, "AWSAccessKeyId": {access}, "Version": {"2010-08-31"},
		"Timestamp": {time.Now().UTC().Format(time.RFC3339)}}
	signV2(form, u.Hostname(), "/", secret, method)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	file := func() {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="/images/gentoo.img"`)
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data)
	}
	if fileFirst {
		file()
	}
	// econe's order: its params hash, then Signature.
	for _, k := range []string{"Action", "SignatureVersion", "SignatureMethod", "AWSAccessKeyId", "Version", "Timestamp", "Signature"} {
		_ = mw.WriteField(k, form.Get(k))
	}
	if !fileFirst {
		file()
	}
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, endpoint, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

// TestEconeUploadAndRegister replays econe-upload and econe-register as
// the documented protocol has them: the multipart upload signed with
// SigV2 gives an AMI ID, which RegisterImage takes as its only
// ImageLocation; the image keeps the file's name.
func TestEconeUploadAndRegister(t *testing.T) {
	te := newTestEnv(t)
	keys := te.keysFor(t, "admin", "admin")
	te.Member(t, "rita", "team-r", "reader")
	rita := te.keysFor(t, "rita", "team-r")
	endpoint := te.Server.URL + "/ec2/"
	data := bytes.Repeat([]byte("gentoo disk "), 8192)
	cases := []struct {
		name      string
		access    string
		secret    string
		method    string
		action    string
		fileFirst bool
		status    int
		code      string
	}{
		{"HmacSHA1 (econe's first clients)", keys.AccessKey, keys.SecretKey, "HmacSHA1", "UploadImage", false, 200, ""},
		{"HmacSHA256", keys.AccessKey, keys.SecretKey, "HmacSHA256", "UploadImage", false, 200, ""},
		{"wrong secret", keys.AccessKey, "wrong", "HmacSHA256", "UploadImage", false, 401, "AuthFailure"},
		{"the file ahead of the signature", keys.AccessKey, keys.SecretKey, "HmacSHA256", "UploadImage", true, 401, "MissingAuthenticationToken"},
		{"another action as multipart", keys.AccessKey, keys.SecretKey, "HmacSHA256", "DescribeImages", false, 400, "InvalidAction"},
		{"a reader", rita.AccessKey, rita.SecretKey, "HmacSHA256", "UploadImage", false, 403, "UnauthorizedOperation"},
	}
	var amis []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := te.client(t, keys)
			status, out := c.send(econeUpload(t, endpoint, tc.access, tc.secret, tc.method, tc.action, data, tc.fileFirst))
			if status != tc.status || out.Code != tc.code {
				t.Fatalf("upload = %d %+v; want %d %s", status, out, tc.status, tc.code)
			}
			if status == 200 {
				if !strings.HasPrefix(out.ImageID, "ami-") || out.Location == "" {
					t.Fatalf("answer %+v lacks the imageId econe-upload prints", out)
				}
				amis = append(amis, out.ImageID)
			}
		})
	}
	if len(amis) == 0 {
		t.Fatal("no upload succeeded")
	}

	// econe-register AMI: RegisterImage with ImageLocation alone, signed
	// by the gem over the host without its port and the endpoint's path.
	u, _ := url.Parse(endpoint)
	form := url.Values{"Action": {"RegisterImage"}, "ImageLocation": {amis[0]}, "AWSAccessKeyId": {keys.AccessKey},
		"Version": {"2010-08-31"}, "Timestamp": {time.Now().UTC().Format(time.RFC3339)}}
	signV2(form, u.Hostname(), u.Path, keys.SecretKey, "HmacSHA256")
	resp, err := http.Post(endpoint, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(raw, []byte("<imageId>"+amis[0]+"</imageId>")) {
		t.Fatalf("register by ImageLocation alone: %d %s", resp.StatusCode, raw)
	}
	c := te.client(t, keys)
	var imgs struct {
		Names  []string `xml:"imagesSet>item>name"`
		States []string `xml:"imagesSet>item>imageState"`
	}
	c.must("DescribeImages", url.Values{"ImageId.1": {amis[0]}}, &imgs)
	if len(imgs.Names) != 1 || imgs.Names[0] != "gentoo.img" || imgs.States[0] != "available" {
		t.Fatalf("the registered image: %+v", imgs)
	}
}

// TestEconeUploadBoundsUnsignedFields: the fields ahead of the file are
// read before the signature is checked, so an unsigned body of endless
// small fields is refused once past the bound, not held in memory.
func TestEconeUploadBoundsUnsignedFields(t *testing.T) {
	te := newTestEnv(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i := range 65 { // one past the bound (maxEconeFields)
		if err := mw.WriteField(fmt.Sprintf("F%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(te.Server.URL+"/ec2/", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(raw, []byte("form fields")) {
		t.Fatalf("%d %s; want 400 naming the bound", resp.StatusCode, raw)
	}
}
