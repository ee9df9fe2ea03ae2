package ui

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

func (u *UI) cosmosRoutes(r chi.Router) {
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/admin/federation", http.StatusSeeOther)
	})
	r.Get("/federation", u.federation)
	if u.PeerAdmin != nil {
		r.Post("/peers/{id}/maintenance", u.maintenance)
	}
	if u.Policy != nil && u.Policy.Versions != nil {
		r.Get("/policy", u.policyView)
		r.Post("/policy", u.pushPolicy)
		r.Post("/policy/{version}/activate", u.activatePolicy)
		r.Post("/policy/rollback", u.rollbackPolicy)
	}
	if u.Policy != nil && u.Policy.Decisions != nil {
		r.Get("/decisions", u.decisionLog)
	}
}

// decisionLog is the placement decisions, newest first, filtered as
// GET /v1/decisions filters them (the policy service's query: an index
// per project and resource, hour buckets otherwise).
func (u *UI) decisionLog(w http.ResponseWriter, r *http.Request) {
	q := policy.Query{Project: strings.TrimSpace(r.URL.Query().Get("project")),
		Resource: strings.TrimSpace(r.URL.Query().Get("resource")), Limit: 50}
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			u.errorPage(w, r, http.StatusBadRequest, "since: a duration such as 30m or 24h")
			return
		}
		q.Since = time.Now().Add(-d)
	}
	recs, err := u.Policy.Decisions.Query(r.Context(), q)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "decisions", view{Title: "Decision log", Nav: "decisions",
		Crumbs: crumbs("Cosmos", "admin", "Decision log", ""), Data: map[string]any{"Records": recs, "Query": r.URL.Query()}})
}

// peerGroup is the peers sharing one value of the grouping label.
type peerGroup struct {
	Label string
	Peers []registry.Peer
}

type federationData struct {
	By      string
	Keys    []string
	Groups  []peerGroup
	Counts  map[registry.Status]int
	Total   int
	CanEdit bool
}

// federation is the map of the pool: peers grouped by a label's values,
// coloured by health, with capacity bars and their last heartbeat. It
// reads the peer snapshot (memory), never the peers.
func (u *UI) federation(w http.ResponseWriter, r *http.Request) {
	peers := u.Peers.View().List()
	by := r.URL.Query().Get("by")
	keys := map[string]bool{}
	d := federationData{By: by, Counts: map[registry.Status]int{}, Total: len(peers), CanEdit: u.PeerAdmin != nil}
	groups := map[string][]registry.Peer{}
	for _, p := range peers {
		for k := range p.Labels {
			keys[k] = true
		}
		d.Counts[p.Status]++
		g := "all peers"
		if by != "" {
			g = by + "=" + p.Labels[by]
			if _, ok := p.Labels[by]; !ok {
				g = "no " + by + " label"
			}
		}
		groups[g] = append(groups[g], p)
	}
	for k := range keys {
		d.Keys = append(d.Keys, k)
	}
	slices.Sort(d.Keys)
	for g, ps := range groups {
		d.Groups = append(d.Groups, peerGroup{Label: g, Peers: ps})
	}
	slices.SortFunc(d.Groups, func(a, b peerGroup) int { return cmp.Compare(a.Label, b.Label) })
	u.render(w, r, http.StatusOK, "federation", view{Title: "Federation", Nav: "federation",
		Crumbs: crumbs("Cosmos", "admin", "Federation", ""), Data: d})
}

// maintenance puts a peer into maintenance or takes it out, as
// PATCH /v1/peers/{peer} with a status does: health states stay the
// prober's.
func (u *UI) maintenance(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cur, err := u.PeerAdmin.Get(ctx, chi.URLParam(r, "id"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	next := cur
	switch r.PostFormValue("on") {
	case "1":
		next.Status, next.StatusReason = registry.StatusMaintenance, strings.TrimSpace(r.PostFormValue("reason"))
	case "0":
		if cur.Status != registry.StatusMaintenance {
			seeOther(w, r, Prefix+"/admin/federation")
			return
		}
		next.Status, next.StatusReason = "", ""
	default:
		u.errorPage(w, r, http.StatusBadRequest, "on: 1 to enter maintenance, 0 to leave it")
		return
	}
	p, err := u.PeerAdmin.Update(ctx, next)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	// The map is drawn from the snapshot: wait (briefly) until it holds
	// the change, so the page the browser is sent to shows it.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = u.Peers.WaitIndex(wctx, p.Revision)
	cancel()
	u.Log.WithField("peer", cur.Name).WithField("user", callerOf(r).token.UserName).WithField("maintenance", next.Status == registry.StatusMaintenance).Info("peer maintenance set from the dashboard")
	seeOther(w, r, Prefix+"/admin/federation")
}

func (u *UI) policyView(w http.ResponseWriter, r *http.Request) {
	u.showPolicy(w, r, http.StatusOK, "", "")
}

func (u *UI) showPolicy(w http.ResponseWriter, r *http.Request, code int, flash, problem string) {
	vs, err := u.Policy.Versions.List(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	page, pg := paginate(r, vs)
	u.render(w, r, code, "policy", view{Title: "Placement policy", Nav: "policy", Flash: flash,
		Crumbs: crumbs("Cosmos", "admin", "Policy", ""), Data: map[string]any{"Versions": page, "Pager": pg, "Problem": problem,
			"Form": map[string]string{"name": r.PostFormValue("name"), "module": r.PostFormValue("module"), "comment": r.PostFormValue("comment")}}})
}

// pushPolicy uploads a one-module policy version, as POST /v1/policies
// does: it must compile (and its tests pass); it is activated only when
// asked.
func (u *UI) pushPolicy(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		name = "placement.rego"
	}
	by := callerOf(r).token.UserName
	v, created, err := u.Policy.Versions.Upload(r.Context(), policy.Bundle{Modules: map[string]string{name: r.PostFormValue("module")}},
		by, strings.TrimSpace(r.PostFormValue("comment")))
	if err != nil {
		code := statusOf(err)
		if code >= 500 {
			u.fail(w, r, err)
			return
		}
		u.showPolicy(w, r, code, "", tellable(err, code))
		return
	}
	msg := "Version " + v.ID + " stored."
	if !created {
		msg = "That policy is already stored as version " + v.ID + "."
	}
	if r.PostFormValue("activate") == "1" {
		if _, err := u.Policy.Versions.Activate(r.Context(), v.ID, by); err != nil {
			u.fail(w, r, err)
			return
		}
		msg += " It is now active."
		u.Log.WithField("version", v.ID).WithField("by", by).Info("policy activated from the dashboard")
	}
	u.showPolicy(w, r, http.StatusOK, msg, "")
}

func (u *UI) activatePolicy(w http.ResponseWriter, r *http.Request) {
	by := callerOf(r).token.UserName
	act, err := u.Policy.Versions.Activate(r.Context(), chi.URLParam(r, "version"), by)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.Log.WithField("version", act.Version).WithField("by", by).Info("policy activated from the dashboard")
	seeOther(w, r, Prefix+"/admin/policy")
}

func (u *UI) rollbackPolicy(w http.ResponseWriter, r *http.Request) {
	by := callerOf(r).token.UserName
	act, err := u.Policy.Versions.Rollback(r.Context(), by)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.Log.WithField("version", act.Version).WithField("by", by).Info("policy rolled back from the dashboard")
	seeOther(w, r, Prefix+"/admin/policy")
}
