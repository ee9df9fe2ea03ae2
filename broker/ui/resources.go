package ui

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
)

// resourceRoutes mounts the lists of the wired services (a nil service
// has no page and no menu entry).
func (u *UI) resourceRoutes(r chi.Router) {
	if u.Volumes != nil {
		r.Get(Prefix+"/volumes", u.volumes)
	}
	if u.Images != nil {
		r.Get(Prefix+"/images", u.images)
	}
	if u.Networks != nil {
		r.Get(Prefix+"/networks", u.networks)
	}
	if u.Keypairs != nil {
		r.Get(Prefix+"/keypairs", u.keypairs)
		r.Post(Prefix+"/keypairs", u.createKeypair)
		r.Post(Prefix+"/keypairs/{name}/delete", u.deleteKeypair)
	}
	r.Get(Prefix+"/api-access", u.apiAccess)
	r.Get(Prefix+"/api-access/openrc", u.openrc)
	r.Get(Prefix+"/api-access/clouds.yaml", u.cloudsYAML)
}

func (u *UI) volumes(w http.ResponseWriter, r *http.Request) {
	pg, err := u.Volumes.List(r.Context(), volume.CallerOf(callerOf(r).token))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	slices.SortFunc(pg.Volumes, func(a, b volume.Volume) int { return b.CreatedAt.Compare(a.CreatedAt) })
	page, p := paginate(r, pg.Volumes)
	u.render(w, r, http.StatusOK, "volumes", view{Title: "Volumes", Nav: "volumes", Crumbs: crumbs("Volumes", ""),
		Data: map[string]any{"Volumes": page, "Pager": p, "Failed": pg.Failed}})
}

func (u *UI) images(w http.ResponseWriter, r *http.Request) {
	pg, err := u.Images.List(r.Context(), callerOf(r).image(), image.Query{Limit: pageSize, Marker: r.URL.Query().Get("marker")})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	last := ""
	if n := len(pg.Images); n > 0 {
		last = pg.Images[n-1].ID
	}
	u.render(w, r, http.StatusOK, "images", view{Title: "Images", Nav: "images", Crumbs: crumbs("Images", ""),
		Data: map[string]any{"Images": pg.Images, "Pager": markerPager(r, pg.More, last), "Failed": pg.Partial}})
}

// netRow is a network with its subnets' ranges.
type netRow struct {
	ID, Name, Peer, Status string
	Shared, External, Own  bool
	CIDRs                  []string
}

func (u *UI) networks(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	vis, err := u.Networks.List(r.Context(), c.token.ProjectID, false)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	cidrs := map[string][]string{}
	for _, s := range vis.Subnets {
		cidrs[s.NetworkID] = append(cidrs[s.NetworkID], s.Peer.CIDR)
	}
	rows := make([]netRow, 0, len(vis.Networks))
	for _, n := range vis.Networks {
		rows = append(rows, netRow{ID: n.Ref.ID, Name: networkName(n), Peer: peerName(n.Ref.Member), Status: n.Peer.Status,
			Shared: n.Peer.Shared, External: n.Peer.External, Own: n.Ref.Project == c.token.ProjectID, CIDRs: cidrs[n.Ref.ID]})
	}
	slices.SortFunc(rows, func(a, b netRow) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Peer, b.Peer)) })
	page, p := paginate(r, rows)
	u.render(w, r, http.StatusOK, "networks", view{Title: "Networks", Nav: "networks", Crumbs: crumbs("Networks", ""),
		Data: map[string]any{"Networks": page, "Pager": p, "Failed": vis.Failed}})
}

// networkName is the name the project gave (kept by the broker), else the
// peer's.
func networkName(n network.Network) string {
	if n.Attrs.Name != nil {
		return *n.Attrs.Name
	}
	return n.Peer.Name
}

type keypairsData struct {
	Keypairs []peers.Keypair
	Pager    pager
	// Created is a key pair just made: its private key is shown once.
	Created *peers.Keypair
	Problem string
}

func (u *UI) keypairs(w http.ResponseWriter, r *http.Request) {
	u.showKeypairs(w, r, http.StatusOK, keypairsData{})
}

func (u *UI) showKeypairs(w http.ResponseWriter, r *http.Request, code int, d keypairsData) {
	ks, err := u.Keypairs.List(r.Context(), callerOf(r).token.UserID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Keypairs, d.Pager = paginate(r, ks)
	u.render(w, r, code, "keypairs", view{Title: "Key pairs", Nav: "keypairs", Crumbs: crumbs("Key pairs", ""), Data: d})
}

// createKeypair makes a key pair: with a public key, imports it; without,
// generates one and shows its private key on this answer only.
func (u *UI) createKeypair(w http.ResponseWriter, r *http.Request) {
	if !u.requireMember(w, r) {
		return
	}
	c := callerOf(r)
	k, err := u.Keypairs.Create(r.Context(), c.token.ProjectID, c.token.UserID, peers.KeypairSpec{
		Name: strings.TrimSpace(r.PostFormValue("name")), PublicKey: strings.TrimSpace(r.PostFormValue("public_key"))})
	if err != nil {
		code := statusOf(err)
		if code >= 500 {
			u.fail(w, r, err)
			return
		}
		u.showKeypairs(w, r, code, keypairsData{Problem: tellable(err, code)})
		return
	}
	d := keypairsData{}
	if k.PrivateKey != "" {
		d.Created = &k
	}
	u.showKeypairs(w, r, http.StatusCreated, d)
}

func (u *UI) deleteKeypair(w http.ResponseWriter, r *http.Request) {
	if !u.requireMember(w, r) {
		return
	}
	c := callerOf(r)
	name, err := url.PathUnescape(chi.URLParam(r, "name"))
	if err == nil {
		err = u.Keypairs.Delete(r.Context(), c.token.ProjectID, c.token.UserID, name)
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	seeOther(w, r, Prefix+"/keypairs")
}
