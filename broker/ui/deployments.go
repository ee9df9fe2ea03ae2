package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

func (u *UI) deploymentRoutes(r chi.Router) {
	if u.Templates == nil {
		return
	}
	r.Get(Prefix+"/deployments", u.deployments)
	r.Get(Prefix+"/deployments/{id}", u.deployment)
	r.Get(Prefix+"/deployments/{id}/events", u.deploymentEvents)
	r.Post(Prefix+"/deployments/{id}/retry", u.deploymentTransition(func(e *deploy.Engine) func(context.Context, string) (*deploy.Deployment, error) { return e.Retry }))
	r.Post(Prefix+"/deployments/{id}/delete", u.deploymentTransition(func(e *deploy.Engine) func(context.Context, string) (*deploy.Deployment, error) { return e.Delete }))
}

func (u *UI) deployments(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	ds, err := u.Templates.Engine.List(r.Context(), c.token.ProjectID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	views := make([]templatesapi.DeploymentView, 0, len(ds))
	for _, d := range ds {
		views = append(views, u.Templates.View(r.Context(), d))
	}
	slices.SortFunc(views, func(a, b templatesapi.DeploymentView) int { return b.CreatedAt.Compare(a.CreatedAt) })
	page, p := paginate(r, views)
	u.render(w, r, http.StatusOK, "deployments", view{Title: "Deployments", Nav: "deployments", Crumbs: crumbs("Deployments", ""),
		Data: map[string]any{"Deployments": page, "Pager": p}})
}

// own loads a deployment of the caller's project; another project's is
// not found, as the API answers.
func (u *UI) own(r *http.Request) (*deploy.Deployment, error) {
	d, err := u.Templates.Engine.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	if d.Project != callerOf(r).token.ProjectID {
		return nil, fmt.Errorf("%w: %s", deploy.ErrNotFound, d.ID)
	}
	return d, nil
}

type deploymentData struct {
	D      templatesapi.DeploymentView
	Live   liveData
	Events []deploy.Event
	Member bool
}

// liveData is the part of the page the event stream redraws.
type liveData struct {
	Status    deploy.Status
	Error     string
	Graph     any
	Settled   bool
	Resources []templatesapi.ResourceView
	Outputs   map[string]any
}

func (u *UI) live(ctx context.Context, d *deploy.Deployment) liveData {
	v := u.Templates.View(ctx, d)
	return liveData{Status: d.Status, Error: v.Error, Graph: graphSVG(d), Settled: !d.Status.InProgress(),
		Resources: v.Resources, Outputs: v.Outputs}
}

func (u *UI) deployment(w http.ResponseWriter, r *http.Request) {
	d, err := u.own(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	ctx := r.Context()
	evs, _, err := u.Templates.Engine.Events(ctx, d.ID, 0)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	evs = u.Templates.MaskedEvents(ctx, d, evs)
	if n := len(evs); n > 50 {
		evs = evs[n-50:] // the newest; the API has them all
	}
	slices.Reverse(evs)
	v := u.Templates.View(ctx, d)
	u.render(w, r, http.StatusOK, "deployment", view{Title: d.Name, Nav: "deployments", Crumbs: crumbs("Deployments", "deployments", d.Name, ""),
		Data: deploymentData{D: v, Live: u.live(ctx, d), Events: evs, Member: callerOf(r).token.HasRole("member")}})
}

// deploymentEvents streams the deployment's live part (status and graph)
// as SSE "state" events, one after each engine event, until it settles
// ("end"); htmx's SSE extension swaps each into the page. The stream
// ends with its session too: at logout, when the session's token expires,
// when the session moves to another token (a project switch: the stream
// was authorized with the old one), and when the token is found revoked
// (checked at least every 15 s, events or not).
func (u *UI) deploymentEvents(w http.ResponseWriter, r *http.Request) {
	d, err := u.own(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	s := callerOf(r).s
	token, checked := s.currentToken(), time.Now()
	// stillValid is false once the stream's session is no longer what
	// authorized it.
	stillValid := func(ctx context.Context) bool {
		if s.currentToken() != token {
			return false
		}
		if time.Since(checked) < 15*time.Second {
			return true
		}
		checked = time.Now()
		if _, err := u.Keystone.Tokens.Validate(ctx, token); err != nil {
			u.sessions.drop(cookieValue(r, sessionCookie))
			return false
		}
		return true
	}
	ctx, cancel := context.WithDeadline(r.Context(), s.expiry())
	defer cancel()
	go func() {
		select {
		case <-s.done():
			cancel()
		case <-ctx.Done():
		}
	}()
	evs, index, err := u.Templates.Engine.Events(ctx, d.ID, 0)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	after := int64(0)
	if n := len(evs); n > 0 {
		after = evs[n-1].Seq
	}
	tmpl := u.pages["deployment"].t
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for {
		cur, err := u.Templates.Engine.Get(ctx, d.ID)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, "live", u.live(ctx, cur)); err != nil {
			u.Log.WithError(err).Error("dashboard deployment stream")
			return
		}
		// One data line per line of the fragment: SSE's framing.
		fmt.Fprintf(w, "event: state\ndata: %s\n\n", strings.ReplaceAll(strings.TrimSpace(buf.String()), "\n", "\ndata: "))
		if !cur.Status.InProgress() {
			fmt.Fprint(w, "event: end\ndata: settled\n\n")
			_ = rc.Flush()
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		for {
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			var more []deploy.Event
			more, index, err = u.Templates.Engine.WatchEvents(wctx, d.ID, after, index)
			cancel()
			if ctx.Err() == nil && !stillValid(ctx) {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				// Quiet: a comment keeps proxies from closing the stream,
				// and a status settled without a new event is seen.
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
				break
			}
			if err != nil {
				return
			}
			if n := len(more); n > 0 {
				after = more[n-1].Seq
			}
			break
		}
	}
}

func (u *UI) deploymentTransition(op func(*deploy.Engine) func(context.Context, string) (*deploy.Deployment, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !u.requireMember(w, r) {
			return
		}
		cur, err := u.own(r)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		d, err := op(u.Templates.Engine)(r.Context(), cur.ID)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		u.Templates.Engine.Start(d.ID)
		seeOther(w, r, Prefix+"/deployments/"+d.ID)
	}
}
