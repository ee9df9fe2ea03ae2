package ui

import (
	"net/http"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// previewData is the launch form's placement preview: what the active
// policy says of the chosen flavor and image now, every peer's verdict.
type previewData struct {
	Verdicts []policy.VerdictRecord
	Order    []string
	Policy   string
	Problem  string
}

// launchPreview asks the placement explain (as POST
// /v1/placement/explain does, for the caller's project) where a server of
// the form's flavor and image would go. Explaining records no decision.
// It is a preview: the image's peer is given as the one holding it, and
// the servers service may still copy the image to another peer.
func (u *UI) launchPreview(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	ctx := r.Context()
	var d previewData
	flavorRef, imageRef := r.URL.Query().Get("flavor"), r.URL.Query().Get("image")
	req := policy.Request{Kind: "server", Project: c.token.ProjectID, User: c.token.UserID}
	var flavor *peers.Flavor
	flavors, _ := u.Servers.PublicFlavors(ctx)
	for i := range flavors {
		if flavors[i].ID == flavorRef || flavors[i].Name == flavorRef {
			flavor = &flavors[i]
		}
	}
	switch {
	case flavor == nil:
		d.Problem = "Choose a flavor to see where the instance would run."
	case u.Images == nil || imageRef == "":
		d.Problem = "Choose an image to see where the instance would run."
	}
	var img image.Image
	if d.Problem == "" {
		var err error
		if img, err = u.Images.Resolve(ctx, c.image(), imageRef); err != nil {
			d.Problem = "That image is not available to this project."
		}
	}
	if d.Problem == "" {
		req.Flavor, req.VCPUs, req.RAMMiB, req.DiskGiB = flavor.Name, flavor.VCPUs, flavor.RAMMiB, flavor.DiskGiB
		req.Image = &policy.Image{ID: img.ID, Properties: img.Properties, MinRAMMiB: img.MinRAMMiB, MinDiskGiB: img.MinDiskGiB,
			Peers: []string{img.PeerID}}
		dec, err := u.Policy.Engine.Explain(ctx, "", req, u.Policy.Candidates())
		if err != nil {
			d.Problem = tellable(err, statusOf(err))
		} else {
			d.Policy, d.Verdicts = dec.Policy, policy.Verdicts(dec)
			for _, p := range dec.Allowed() {
				d.Order = append(d.Order, p.Name)
			}
		}
	}
	u.render(w, r, http.StatusOK, "preview", view{Data: d})
}
