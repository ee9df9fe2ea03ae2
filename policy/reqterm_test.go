package policy

import "testing"

// TestRequestMemo builds input.request for a run of requests through one
// memo, the caller changing its maps, slices and pointers in place
// between requests as a broker reusing a request would, and checks each
// term is the one built without the memo.
func TestRequestMemo(t *testing.T) {
	img := &Image{ID: "img", Properties: map[string]string{"architecture": "x86_64"}, MinRAMMiB: 512, Peers: []string{"a", "b"}}
	dep := &Deployment{ID: "d1", Resource: "web", Replica: 1}
	req := Request{Kind: "server", Project: "p", VCPUs: 2, RAMMiB: 4096, Image: img, Deployment: dep,
		PreferredLabels: map[string]string{"region": "r1"}, SpreadPeers: map[string]int{"a": 1},
		Usage: &Usage{VCPUs: 10}, Quota: &Usage{VCPUs: 100, RAMMiB: -1}}
	var m requestMemo
	for _, c := range []struct {
		name   string
		change func()
	}{
		{"first", func() {}},
		{"the same again", func() {}},
		{"usage changed in place", func() { req.Usage.VCPUs = 11 }},
		{"an image property changed in place", func() { img.Properties["architecture"] = "aarch64" }},
		{"an image peer changed in place", func() { img.Peers[1] = "c" }},
		{"no image", func() { req.Image = nil }},
		{"the image back", func() { req.Image = img }},
		{"a preferred label changed in place", func() { req.PreferredLabels["region"] = "r2" }},
		{"a required label added", func() { req.RequiredLabels = map[string]string{"gpu": "a100"} }},
		{"a spread count changed in place", func() { req.SpreadPeers["a"] = 2 }},
		{"the replica changed in place", func() { dep.Replica = 2 }},
		{"the spread group set", func() { dep.SpreadGroup = "g" }},
		{"another flavor", func() { req.VCPUs, req.RAMMiB, req.DiskGiB = 8, 16384, 80 }},
		{"a volume", func() { req.Kind = "volume" }},
		{"no quota", func() { req.Quota = nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.change()
			got, want := requestTerm(req, &m), requestTerm(req, nil)
			if !got.Equal(want) {
				t.Fatalf("memoized input.request\n%v\nwant\n%v", got, want)
			}
		})
	}
}
