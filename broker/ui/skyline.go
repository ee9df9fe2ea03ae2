package ui

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
)

func (u *UI) skylineRoutes(r chi.Router) {
	r.Get(Prefix+"/instances", u.instances)
	r.Get(Prefix+"/instances/new", u.launchForm)
	if u.Policy != nil && u.Policy.Engine != nil && u.Policy.Candidates != nil {
		r.Get(Prefix+"/instances/preview", u.launchPreview)
	}
	r.Post(Prefix+"/instances", u.launch)
	r.Get(Prefix+"/instances/{id}", u.instance)
	r.Get(Prefix+"/instances/{id}/console", u.console)
	r.Post(Prefix+"/instances/{id}/action", u.instanceAction)
	r.Post(Prefix+"/instances/{id}/delete", u.deleteInstance)
}

// usage is one quota's line on the overview.
type usage struct {
	Name        string
	Used, Limit int64 // Limit < 0: unlimited
}

// peerShare is how many of the project's resources run on one peer.
type peerShare struct {
	Peer             string
	Servers, Volumes int
}

type overviewData struct {
	Quotas []usage
	Peers  []peerShare
	Failed []string
}

var overviewQuotas = []quota.Resource{quota.Instances, quota.Cores, quota.RAM, quota.Volumes, quota.Gigabytes,
	quota.Snapshots, quota.Networks, quota.Ports, quota.SecurityGroups}

// overview shows the project's quota usage and where its resources run.
func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	ctx := r.Context()
	var d overviewData
	if u.Servers.Quota != nil {
		sc := quota.Scope{Project: c.token.ProjectID}
		used, reserved, err := u.Servers.Quota.Usage(ctx, sc)
		limits, lerr := u.Servers.Quota.Quota(ctx, c.token.ProjectID)
		if err == nil && lerr == nil {
			for _, res := range overviewQuotas {
				lim, ok := limits[res]
				if !ok {
					lim = -1
				}
				d.Quotas = append(d.Quotas, usage{Name: string(res), Used: int64(used[res] + reserved[res]), Limit: int64(lim)})
			}
		}
	}
	byPeer := map[string]*peerShare{}
	share := func(peer string) *peerShare {
		if byPeer[peer] == nil {
			byPeer[peer] = &peerShare{Peer: peer}
		}
		return byPeer[peer]
	}
	if pg, err := u.Servers.List(ctx, c.compute(), compute.Query{}); err == nil {
		for _, s := range pg.Servers {
			share(s.Zone).Servers++
		}
		d.Failed = append(d.Failed, pg.Failed...)
	}
	if u.Volumes != nil {
		if pg, err := u.Volumes.List(ctx, volume.CallerOf(c.token)); err == nil {
			for _, v := range pg.Volumes {
				share(v.Zone).Volumes++
			}
			d.Failed = append(d.Failed, pg.Failed...)
		}
	}
	for _, p := range byPeer {
		d.Peers = append(d.Peers, *p)
	}
	slices.SortFunc(d.Peers, func(a, b peerShare) int { return cmp.Compare(a.Peer, b.Peer) })
	slices.Sort(d.Failed)
	d.Failed = slices.Compact(d.Failed)
	u.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Data: d})
}
