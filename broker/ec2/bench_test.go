package ec2_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/ec2"
)

// BenchmarkSignedRequest is one signed DescribeAvailabilityZones over
// HTTP: the client's signing, the broker's SigV4 check, the credential
// lookup and the user's roles read from the store, the answer's XML.
func BenchmarkSignedRequest(b *testing.B) {
	te := newTestEnv(b)
	keys := te.keysFor(b, "admin", "admin")
	body := []byte(url.Values{"Action": {"DescribeAvailabilityZones"}, "Version": {ec2.APIVersion}}.Encode())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodPost, te.Server.URL+"/ec2/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if err := ec2.Sign(req, body, keys, "RegionOne", "ec2", time.Now()); err != nil {
			b.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkSign is the client side alone.
func BenchmarkSign(b *testing.B) {
	keys := ec2.Keys{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	body := []byte("Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0")
	for range b.N {
		req, _ := http.NewRequest(http.MethodPost, "http://broker.example:8080/ec2/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if err := ec2.Sign(req, body, keys, "RegionOne", "ec2", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
