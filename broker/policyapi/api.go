package policyapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// maxBody bounds an upload or explain body. A stored version must fit the
// store's value limit anyway (registry.MaxValueSize).
const maxBody = 1 << 20

// Explainer is the part of *policy.Engine the API uses.
type Explainer interface {
	Explain(ctx context.Context, version string, req policy.Request, candidates []registry.Peer) (policy.Decision, error)
	Active() string
	WaitActive(ctx context.Context, version string) error
}

// activationWait bounds how long an activation's answer waits for this
// broker's engine to load the version (it compiled at upload: a load is
// a watch round trip away).
const activationWait = 10 * time.Second

// awaitDeciding waits until this broker decides with version, so a
// client that activates and then creates is placed by what it activated.
// A version still not loaded by then is logged; the answer says which
// version decides.
func (a *API) awaitDeciding(r *http.Request, version string) string {
	ctx, cancel := context.WithTimeout(r.Context(), activationWait)
	defer cancel()
	if err := a.Engine.WaitActive(ctx, version); err != nil {
		a.Log.WithError(err).WithField("version", version).Warn("policy: activated, but this broker does not decide with it yet")
	}
	return a.Engine.Active()
}

var _ Explainer = (*policy.Engine)(nil)

// API serves the policy endpoints.
type API struct {
	Versions  *policy.Versions
	Decisions *policy.Decisions
	Engine    Explainer
	// Candidates returns the peers a placement would consider now (the
	// connected members of the pool).
	Candidates func() []registry.Peer
	// Auth, when set, authenticates every route (identity's
	// Keystone.Authenticate); leave it nil when mounting inside a group
	// that already authenticates.
	Auth func(http.Handler) http.Handler
	Log  logrus.FieldLogger
}

// Routes mounts the API on r, the /v1 router: r.Group(api.Routes).
func (a *API) Routes(r chi.Router) {
	if a.Auth != nil {
		r.Use(a.Auth)
	}
	r.Route("/policies", func(r chi.Router) {
		r.Use(identity.RequireCloudAdmin)
		r.Get("/", a.list)
		r.Post("/", a.upload)
		r.Post("/rollback", a.rollback)
		r.Get("/{version}", a.show)
		r.Post("/{version}/activate", a.activate)
	})
	r.Post("/placement/explain", a.explain)
	r.Get("/decisions", a.decisions)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) { fail(w, r, a.Log, err) }

func who(r *http.Request) string {
	t, _ := identity.TokenFrom(r.Context())
	if t.UserName != "" {
		return t.UserName
	}
	return t.UserID
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	list, err := a.Versions.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	active, err := a.Versions.Active(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"policies": list, "active": active, "deciding": a.Engine.Active()})
}

// uploadRequest is the JSON upload; Activate makes the new version active
// in the same call (only if it is valid, which an upload must be).
type uploadRequest struct {
	policy.Bundle
	Comment  string `json:"comment"`
	Activate bool   `json:"activate"`
}

func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	req, err := readUpload(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, created, err := a.Versions.Upload(r.Context(), req.Bundle, who(r), req.Comment)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := map[string]any{"policy": summary(v)}
	if req.Activate {
		act, err := a.Versions.Activate(r.Context(), v.ID, who(r))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out["active"] = act
		out["deciding"] = a.awaitDeciding(r, act.Version)
	}
	a.Log.WithFields(logrus.Fields{"version": v.ID, "created": created, "by": who(r), "activate": req.Activate}).Info("policy uploaded")
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, out)
}

// readUpload reads a JSON body ({modules, tests, data, comment, activate})
// or a multipart form whose files are named as in a policy directory
// (*.rego, *_test.rego, *.json, *.yaml data) plus comment and activate
// fields.
func readUpload(w http.ResponseWriter, r *http.Request) (uploadRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var req uploadRequest
	if ct == "multipart/form-data" {
		if err := r.ParseMultipartForm(maxBody); err != nil {
			return req, bodyError(err)
		}
		files := fstest.MapFS{}
		for _, fhs := range r.MultipartForm.File {
			for _, fh := range fhs {
				name := path.Clean(strings.TrimPrefix(fh.Filename, "/"))
				if name == "." || strings.HasPrefix(name, "../") || name == ".." {
					return req, fmt.Errorf("%w: file name %q", errBadRequest, fh.Filename)
				}
				f, err := fh.Open()
				if err != nil {
					return req, err
				}
				raw, err := io.ReadAll(f)
				_ = f.Close()
				if err != nil {
					return req, err
				}
				files[name] = &fstest.MapFile{Data: raw}
			}
		}
		b, err := policy.LoadDir(files)
		if err != nil {
			return req, err
		}
		req.Bundle, req.Comment = b, r.FormValue("comment")
		req.Activate, _ = strconv.ParseBool(r.FormValue("activate"))
		return req, nil
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, bodyError(err)
	}
	return req, nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("%w: at most %d bytes", errTooLarge, tooBig.Limit)
	}
	return fmt.Errorf("%w: %v", errBadRequest, err)
}

func summary(v policy.Version) map[string]any {
	mods, tests := []string{}, []string{}
	for name := range v.Modules {
		mods = append(mods, name)
	}
	for name := range v.Tests {
		tests = append(tests, name)
	}
	return map[string]any{"id": v.ID, "created_at": v.CreatedAt, "created_by": v.CreatedBy, "comment": v.Comment,
		"modules": sorted(mods), "tests": sorted(tests)}
}

func sorted(ss []string) []string {
	slices.Sort(ss)
	return ss
}

func (a *API) show(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "version")
	if id == "active" {
		act, err := a.Versions.Active(r.Context())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		id = act.Version
	}
	v, err := a.Versions.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"policy": v})
}

func (a *API) activate(w http.ResponseWriter, r *http.Request) {
	act, err := a.Versions.Activate(r.Context(), chi.URLParam(r, "version"), who(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Log.WithFields(logrus.Fields{"version": act.Version, "by": who(r)}).Info("policy activated")
	writeJSON(w, http.StatusOK, map[string]any{"active": act, "deciding": a.awaitDeciding(r, act.Version)})
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) {
	act, err := a.Versions.Rollback(r.Context(), who(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Log.WithFields(logrus.Fields{"version": act.Version, "by": who(r)}).Info("policy rolled back")
	writeJSON(w, http.StatusOK, map[string]any{"active": act, "deciding": a.awaitDeciding(r, act.Version)})
}

// decisionOut is a decision as explain answers it.
type decisionOut struct {
	Policy   string                 `json:"policy"`
	Order    []string               `json:"order"`
	Verdicts []policy.VerdictRecord `json:"verdicts"`
}

func (a *API) explain(w http.ResponseWriter, r *http.Request) {
	t, _ := identity.TokenFrom(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var body ExplainRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		a.fail(w, r, bodyError(err))
		return
	}
	if err := body.Request.validate(); err != nil {
		a.fail(w, r, err)
		return
	}
	admin := t.CloudAdmin()
	switch {
	case !admin && body.Version != "":
		a.fail(w, r, fmt.Errorf("%w: explaining against a version that is not active needs a cloud admin", errForbidden))
		return
	case !admin && body.Peers != nil:
		a.fail(w, r, fmt.Errorf("%w: explaining against hypothetical peers needs a cloud admin", errForbidden))
		return
	case !admin && body.Request.Project != "" && body.Request.Project != t.ProjectID:
		a.fail(w, r, fmt.Errorf("%w: explaining for another project needs a cloud admin", errForbidden))
		return
	case !t.Scoped() && body.Request.Project == "":
		a.fail(w, r, fmt.Errorf("%w: request.project: needed with an unscoped token", errBadRequest))
		return
	}
	req := body.Request.toPolicy()
	if req.Project == "" {
		req.Project = t.ProjectID
	}
	if req.User == "" || !admin {
		req.User = t.UserID
	}
	candidates := body.Peers
	if candidates == nil {
		candidates = a.Candidates()
	}
	d, err := a.Engine.Explain(r.Context(), body.Version, req, candidates)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := decisionOut{Policy: d.Policy, Order: []string{}, Verdicts: policy.Verdicts(d)}
	for _, p := range d.Allowed() {
		out.Order = append(out.Order, p.Name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"decision": out})
}

func (a *API) decisions(w http.ResponseWriter, r *http.Request) {
	t, _ := identity.TokenFrom(r.Context())
	q := policy.Query{Resource: r.URL.Query().Get("resource"), Deployment: r.URL.Query().Get("deployment")}
	var problems []string
	for _, f := range []struct {
		name string
		into *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := r.URL.Query().Get(f.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				problems = append(problems, f.name+": an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
			}
			*f.into = at
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problems = append(problems, "limit: a whole number from 1 to 1000")
		}
		q.Limit = n
	}
	if len(problems) > 0 {
		a.fail(w, r, fmt.Errorf("%w: %s", errBadRequest, strings.Join(problems, "; ")))
		return
	}
	if !t.CloudAdmin() {
		if !t.Scoped() {
			a.fail(w, r, fmt.Errorf("%w: a project-scoped token is needed", errForbidden))
			return
		}
		q.Project = t.ProjectID
	}
	recs, err := a.Decisions.Query(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []policy.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": recs})
}
