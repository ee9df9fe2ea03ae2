package ec2_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/image"
)

// launch registers an uploaded image of the client's project as name and
// runs n instances of it in its zone, running when it returns.
func (te *testEnv) launch(ctx context.Context, t *testing.T, c *client, name string, n int) (image.Image, []string) {
	t.Helper()
	img := te.uploadImage(t, "admin", name+".qcow2")
	var reg struct {
		ImageID string `xml:"imageId"`
	}
	c.must("RegisterImage", url.Values{"ImageLocation": {"cloudmux/" + img.ID}, "Name": {name}}, &reg)
	var run struct {
		Instances []instance `xml:"instancesSet>item"`
	}
	count := strconv.Itoa(n)
	c.must("RunInstances", url.Values{"ImageId": {reg.ImageID}, "MinCount": {count}, "MaxCount": {count}, "Placement.AvailabilityZone": {img.PeerName}}, &run)
	ids := make([]string, len(run.Instances))
	for i, it := range run.Instances {
		ids[i] = it.ID
	}
	if len(ids) != n {
		t.Fatalf("run = %+v", run)
	}
	c.waitState(ctx, "running", ids...)
	return img, ids
}

// send posts body (form-encoded) to a prepared request and returns the
// answer's status and body.
func send(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestSignatureCoversEveryParameter is the attack from issue 12 over real
// HTTP: a request whose signature covers one instance must not act on a
// second one named only in a part of the request the signature does not
// cover (the body of a presigned URL or of an UNSIGNED-PAYLOAD request, a
// repeated SigV2 parameter). Each attempt is refused with AuthFailure and
// leaves both instances running; the honest forms still work.
func TestSignatureCoversEveryParameter(t *testing.T) {
	te := newTestEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	keys := te.keysFor(t, "admin", "admin")
	admin := te.client(t, keys)
	_, launched := te.launch(ctx, t, admin, "sigscope", 2)
	signedFor, victim := launched[0], launched[1]

	stopQuery := "Action=StopInstances&Version=" + ec2.APIVersion + "&InstanceId.1=" + signedFor
	smuggled := "InstanceId.2=" + victim
	presigned := func(t *testing.T) string {
		u, _ := url.Parse(admin.url + "?" + stopQuery)
		signed, err := ec2.Presign(http.MethodPost, u, keys, "us-east-1", "ec2", time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return signed.String()
	}
	attacks := []struct {
		name string
		req  func(t *testing.T) *http.Request
	}{
		{"presigned POST with parameters in the unsigned body", func(t *testing.T) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, presigned(t), strings.NewReader(smuggled))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
		{"presigned POST with parameters in a body without a content type", func(t *testing.T) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, presigned(t), strings.NewReader(smuggled))
			return req
		}},
		{"header signature over UNSIGNED-PAYLOAD with parameters in the body", func(t *testing.T) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, admin.url+"?"+stopQuery, nil)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			if err := ec2.Sign(req, nil, keys, "us-east-1", "ec2", time.Now()); err != nil {
				t.Fatal(err)
			}
			req.Body = io.NopCloser(strings.NewReader(smuggled))
			req.ContentLength = int64(len(smuggled))
			return req
		}},
		{"SigV2 with a signed parameter repeated in the body", func(t *testing.T) *http.Request {
			form := url.Values{"Action": {"StopInstances"}, "Version": {ec2.APIVersion}, "AWSAccessKeyId": {keys.AccessKey},
				"Timestamp": {time.Now().UTC().Format(time.RFC3339)}, "InstanceId.1": {signedFor}}
			u, _ := url.Parse(admin.url)
			signV2(form, u.Host, u.Path, keys.SecretKey, "HmacSHA256")
			body := form.Encode() + "&InstanceId.1=" + victim
			req, _ := http.NewRequest(http.MethodPost, admin.url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}},
	}
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := send(t, tc.req(t))
			var e apiError
			if err := xml.Unmarshal(raw, &e); err != nil || status != http.StatusUnauthorized || e.Code != "AuthFailure" || !strings.HasPrefix(e.ReqID, "req-") {
				t.Fatalf("answer %d %s; want 401 AuthFailure with a request ID", status, raw)
			}
			admin.t = t
			for _, it := range admin.describe(url.Values{"InstanceId.1": {signedFor}, "InstanceId.2": {victim}}) {
				if it.State != "running" {
					t.Fatalf("refused request still acted: %s is %s", it.ID, it.State)
				}
			}
		})
	}
	admin.t = t

	// The honest forms act on exactly what they sign.
	t.Run("presigned POST with an empty body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, presigned(t), nil)
		if status, raw := send(t, req); status != http.StatusOK || !bytes.Contains(raw, []byte(signedFor)) || bytes.Contains(raw, []byte(victim)) {
			t.Fatalf("answer %d %s", status, raw)
		}
	})
	t.Run("header signature over the body's hash", func(t *testing.T) {
		admin.t = t
		admin.must("RebootInstances", url.Values{"InstanceId.1": {victim}}, nil)
	})
	t.Run("SigV2 with every parameter signed once", func(t *testing.T) {
		form := url.Values{"Action": {"DescribeInstances"}, "Version": {ec2.APIVersion}, "AWSAccessKeyId": {keys.AccessKey},
			"Timestamp": {time.Now().UTC().Format(time.RFC3339)}, "InstanceId.1": {victim}}
		u, _ := url.Parse(admin.url)
		signV2(form, u.Host, u.Path, keys.SecretKey, "HmacSHA256")
		req, _ := http.NewRequest(http.MethodPost, admin.url, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, raw := send(t, req); status != http.StatusOK || !bytes.Contains(raw, []byte(victim)) {
			t.Fatalf("answer %d %s", status, raw)
		}
	})
	admin.t = t
	if got := admin.describe(url.Values{"InstanceId.1": {victim}}); len(got) != 1 || got[0].State != "running" {
		t.Fatalf("the instance no request signed for is %+v", got)
	}
}
