package ui

import (
	"errors"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

func (c *caller) compute() compute.Caller { return compute.CallerOf(c.token) }
func (c *caller) image() image.Caller     { return image.CallerOf(c.token) }

// transitional says a server's status will change by itself: its row is
// polled until it settles.
func transitional(s peers.ServerStatus) bool {
	switch strings.ToUpper(string(s)) {
	case "ACTIVE", "SHUTOFF", "ERROR", "PAUSED", "SUSPENDED", "SHELVED", "VERIFY_RESIZE":
		return false
	}
	return true
}

type instancesData struct {
	Servers []compute.Server
	Failed  []string
	Pager   pager
	// Poll: a server is changing state; the table refreshes itself.
	Poll bool
	URL  string
}

func (u *UI) instances(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	marker := r.URL.Query().Get("marker")
	pg, err := u.Servers.List(r.Context(), c.compute(), compute.Query{Limit: pageSize, Marker: marker})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := instancesData{Servers: pg.Servers, Failed: pg.Failed, URL: r.URL.RequestURI()}
	last := ""
	if n := len(pg.Servers); n > 0 {
		last = pg.Servers[n-1].ID
	}
	d.Pager = markerPager(r, pg.More, last)
	d.Poll = slices.ContainsFunc(pg.Servers, func(s compute.Server) bool { return transitional(s.Status) })
	u.render(w, r, http.StatusOK, "instances", view{Title: "Instances", Nav: "instances",
		Crumbs: crumbs("Instances", "instances"), Data: d})
}

type launchData struct {
	// Preview: the placement preview is wired.
	Preview  bool
	Flavors  []peers.Flavor
	Images   []image.Image
	Networks []choice
	Keypairs []string
	Problem  string
	Field    string
	Form     map[string]string
}

type choice struct{ ID, Name string }

func (u *UI) launchForm(w http.ResponseWriter, r *http.Request) {
	u.showLaunch(w, r, http.StatusOK, launchData{})
}

func (u *UI) showLaunch(w http.ResponseWriter, r *http.Request, code int, d launchData) {
	c := callerOf(r)
	ctx := r.Context()
	d.Flavors, _ = u.Servers.PublicFlavors(ctx)
	slices.SortFunc(d.Flavors, func(a, b peers.Flavor) int { return a.VCPUs*100000 + a.RAMMiB - b.VCPUs*100000 - b.RAMMiB })
	if u.Images != nil {
		if pg, err := u.Images.List(ctx, c.image(), image.Query{Statuses: []string{"active"}, Limit: 200}); err == nil {
			d.Images = pg.Images
		}
	}
	if u.Networks != nil {
		if vis, err := u.Networks.List(ctx, c.token.ProjectID, false); err == nil {
			for _, n := range vis.Networks {
				d.Networks = append(d.Networks, choice{ID: n.Ref.ID, Name: n.Peer.Name + " (" + peerName(n.Ref.Member) + ")"})
			}
		}
	}
	if u.Keypairs != nil {
		if ks, err := u.Keypairs.List(ctx, c.token.UserID); err == nil {
			for _, k := range ks {
				d.Keypairs = append(d.Keypairs, k.Name)
			}
		}
	}
	if d.Form == nil {
		d.Form = map[string]string{}
	}
	d.Preview = u.Policy != nil && u.Policy.Engine != nil && u.Policy.Candidates != nil
	u.render(w, r, code, "launch", view{Title: "Launch an instance", Nav: "instances",
		Crumbs: crumbs("Instances", "instances", "Launch", ""), Data: d})
}

// launch creates a server through the servers service: placement, quota
// and the references' resolution happen there, as for Nova.
func (u *UI) launch(w http.ResponseWriter, r *http.Request) {
	if !u.requireMember(w, r) {
		return
	}
	c := callerOf(r)
	form := map[string]string{}
	for _, k := range []string{"name", "flavor", "image", "network", "key_name"} {
		form[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	spec := compute.CreateSpec{Name: form["name"], FlavorRef: form["flavor"], ImageRef: form["image"],
		KeyName: form["key_name"], NetworksMode: compute.NetworksAuto}
	switch form["network"] {
	case "", compute.NetworksAuto:
	case compute.NetworksNone:
		spec.NetworksMode = compute.NetworksNone
	default:
		spec.NetworksMode, spec.NICs = "", []compute.NIC{{Network: form["network"]}}
	}
	s, err := u.Servers.Create(r.Context(), c.compute(), spec)
	if err != nil {
		code := statusOf(err)
		if code >= 500 {
			u.fail(w, r, err)
			return
		}
		u.showLaunch(w, r, code, launchData{Problem: tellable(err, code), Field: compute.FieldOf(err), Form: form})
		return
	}
	seeOther(w, r, Prefix+"/instances/"+s.ID)
}

type instanceData struct {
	Server      compute.Server
	Attachments []compute.Attachment
	Interfaces  []compute.Interface
	Decision    *policy.Record
	Poll        bool
	Member      bool
}

func (u *UI) instance(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	ctx := r.Context()
	id := chi.URLParam(r, "id")
	s, err := u.Servers.Get(ctx, c.compute(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := instanceData{Server: s, Poll: transitional(s.Status), Member: c.token.HasRole(identity.RoleMember)}
	// What the peer cannot say (it did not answer) is left out, not an
	// error: the page shows what the broker knows.
	d.Attachments, _ = u.Servers.Attachments(ctx, c.compute(), id)
	d.Interfaces, _ = u.Servers.Interfaces(ctx, c.compute(), id)
	if u.Policy != nil && u.Policy.Decisions != nil {
		recs, err := u.Policy.Decisions.Query(ctx, policy.Query{Resource: id, Project: c.token.ProjectID, Limit: 1})
		if err == nil && len(recs) > 0 {
			d.Decision = &recs[0]
		}
	}
	u.render(w, r, http.StatusOK, "instance", view{Title: s.Name, Nav: "instances",
		Crumbs: crumbs("Instances", "instances", s.Name, ""), Data: d})
}

// console is the instance's console output, loaded into its page by htmx.
func (u *UI) console(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	out, err := u.Servers.Console(r.Context(), c.compute(), chi.URLParam(r, "id"), 100)
	if errors.Is(err, peers.ErrNotSupported) {
		out, err = "(this instance's cloud does not offer console output)", nil
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<pre class="console" id="console">`+template.HTMLEscapeString(out)+`</pre>`)
}

var actions = map[string]peers.ServerAction{
	"start": peers.ActionStart, "stop": peers.ActionStop, "reboot": peers.ActionReboot, "hard_reboot": peers.ActionHardReboot,
}

func (u *UI) instanceAction(w http.ResponseWriter, r *http.Request) {
	if !u.requireMember(w, r) {
		return
	}
	c := callerOf(r)
	id := chi.URLParam(r, "id")
	a, ok := actions[r.PostFormValue("action")]
	if !ok {
		u.errorPage(w, r, http.StatusBadRequest, "action: one of start, stop, reboot, hard_reboot")
		return
	}
	if err := u.Servers.Action(r.Context(), c.compute(), id, a); err != nil {
		u.fail(w, r, err)
		return
	}
	seeOther(w, r, Prefix+"/instances/"+id)
}

func (u *UI) deleteInstance(w http.ResponseWriter, r *http.Request) {
	if !u.requireMember(w, r) {
		return
	}
	c := callerOf(r)
	if err := u.Servers.Delete(r.Context(), c.compute(), chi.URLParam(r, "id")); err != nil {
		u.fail(w, r, err)
		return
	}
	seeOther(w, r, Prefix+"/instances")
}

func peerName(m *peers.Member) string {
	if m == nil {
		return "?"
	}
	return m.Peer.Name
}
