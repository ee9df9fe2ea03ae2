package ec2_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRefusalsCarryNoInternalText: a refusal that comes from below (a
// peer's state, a service's wording around it) reaches the tenant as an
// EC2 code, a clean message and the request ID; the peer's raw IDs and the
// Go packages' error text stay in the log.
func TestRefusalsCarryNoInternalText(t *testing.T) {
	te := newTestEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	img, launched := te.launch(ctx, t, admin, "errors", 1)
	id := launched[0]
	admin.must("StopInstances", url.Values{"InstanceId.1": {id}}, nil)
	admin.waitState(ctx, "stopped", id)
	var vol struct {
		ID string `xml:"volumeId"`
	}
	admin.must("CreateVolume", url.Values{"Size": {"1"}, "AvailabilityZone": {img.PeerName}}, &vol)
	admin.must("AttachVolume", url.Values{"VolumeId": {vol.ID}, "InstanceId": {id}, "Device": {"/dev/vdb"}}, nil)

	// Every ID the peers and the index know these by: none may show.
	var internal []string
	for _, kind := range []string{"server", "volume", "image"} {
		entries, err := te.index.List(ctx, kind, te.Boot.Project.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			internal = append(internal, e.ID, e.PeerResourceID, e.PeerID)
		}
	}
	cases := []struct {
		name, action string
		params       url.Values
		code         string
	}{
		{"reboot a stopped instance", "RebootInstances", url.Values{"InstanceId.1": {id}}, "IncorrectInstanceState"},
		{"attach an attached volume", "AttachVolume", url.Values{"VolumeId": {vol.ID}, "InstanceId": {id}, "Device": {"/dev/vdc"}}, "VolumeInUse"},
		{"delete an attached volume", "DeleteVolume", url.Values{"VolumeId": {vol.ID}}, "VolumeInUse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admin.t = t
			e := admin.do(tc.action, tc.params, nil)
			wantCode(t, e, tc.code)
			if e.Message == "" || !strings.HasPrefix(e.ReqID, "req-") {
				t.Fatalf("error %+v lacks a message or a request ID", e)
			}
			for _, leak := range append([]string{"peers:", "compute:", "registry:", "image:", "network:"}, internal...) {
				if leak != "" && strings.Contains(e.Message, leak) {
					t.Fatalf("message %q carries internal text %q", e.Message, leak)
				}
			}
		})
	}
}
