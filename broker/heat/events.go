package heat

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// eventID gives an engine event a UUID-shaped ID: the stack's ID with
// the event's sequence number as its last group, so a marker reads back.
func eventID(d *deploy.Deployment, seq int64) string {
	return fmt.Sprintf("%s-%012x", d.ID[:23], seq)
}

func eventSeq(d *deploy.Deployment, id string) (int64, bool) {
	prefix, hex, ok := strings.Cut(id[min(len(id), 23):], "-")
	if !ok || prefix != "" || !strings.HasPrefix(id, d.ID[:23]) {
		return 0, false
	}
	n, err := strconv.ParseInt(hex, 16, 64)
	return n, err == nil
}

// eventView renders an engine event as Heat's; ok is false for events
// Heat has no counterpart of.
func (a *API) eventView(r *http.Request, d *deploy.Deployment, ev deploy.Event, msg string) (map[string]any, bool) {
	status, ok := eventStatus(ev)
	if !ok {
		return nil, false
	}
	name, physical, typ := d.Name, d.ID, "OS::Heat::Stack"
	self := base(r) + stackPath(d) + "/resources/" + d.Name + "/events/" + eventID(d, ev.Seq)
	if ev.Resource != "" {
		if strings.Contains(ev.Resource, " ") {
			return nil, false // a sweep of an untracked resource, named by kind and ID
		}
		// A replaced instance's removal is logged under "retired:KEY".
		mm := instanceKey.FindStringSubmatch(strings.TrimPrefix(ev.Resource, "retired:"))
		if mm == nil {
			return nil, false
		}
		name, physical, typ = mm[1], "", ""
		if res := d.Resources[ev.Resource]; res != nil {
			physical = res.ID
		}
		self = base(r) + stackPath(d) + "/resources/" + name + "/events/" + eventID(d, ev.Seq)
	}
	if msg == "" {
		msg = "state changed"
	}
	v := map[string]any{
		"id": eventID(d, ev.Seq), "event_time": timeOf(ev.Time), "resource_name": name, "logical_resource_id": name,
		"physical_resource_id": physical, "resource_status": status, "resource_status_reason": msg,
		"links": []any{link(self, "self"), link(base(r)+"/stacks/"+d.Name+"/"+d.ID+"/resources/"+name, "resource"), link(base(r)+stackPath(d), "stack")},
	}
	if typ != "" {
		v["resource_type"] = typ
	}
	return v, true
}

// events answers the stack's events, or one resource's: filtered
// (resource_name, resource_action, resource_status, resource_type),
// sorted by time (sort_dir, ascending by default) and paged by marker
// (an event ID) and limit.
func (a *API) events(w http.ResponseWriter, r *http.Request, only string) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	evs, _, err := a.Engine.Events(r.Context(), d.ID, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.masker(r.Context(), d)
	q := r.URL.Query()
	types := map[string]string{}
	if gs, _ := groups(d); gs != nil {
		for _, g := range gs {
			types[g.name] = g.typ
		}
	}
	var rows []map[string]any
	for _, ev := range evs {
		v, ok := a.eventView(r, d, ev, m.String(ev.Message))
		if !ok {
			continue
		}
		name := v["resource_name"].(string)
		if _, set := v["resource_type"]; !set {
			v["resource_type"] = types[name]
		}
		status := v["resource_status"].(string)
		action, state, _ := strings.Cut(status, "_")
		if only != "" && name != only || !matches(q, "resource_name", name) || !matches(q, "resource_action", action) ||
			!matches(q, "resource_status", state) && !matches(q, "resource_status", status) || !matches(q, "resource_type", v["resource_type"].(string)) {
			continue
		}
		rows = append(rows, v)
	}
	if q.Get("sort_dir") == "desc" {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	} else if dir := q.Get("sort_dir"); dir != "" && dir != "asc" {
		a.fail(w, r, badRequest("sort_dir: want asc or desc"))
		return
	}
	if marker := q.Get("marker"); marker != "" {
		if _, ok := eventSeq(d, marker); !ok {
			a.fail(w, r, errNotFound("The Event ("+marker+") could not be found."))
			return
		}
		at := -1
		for i, v := range rows {
			if v["id"] == marker {
				at = i
			}
		}
		rows = rows[at+1:] // a marker filtered out or collected: from the start
	}
	limit := url.Values{"limit": q["limit"]}
	if len(q["limit"]) == 0 {
		limit = nil
	}
	rows, err = page(rows, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"events": rows})
}

func (a *API) stackEvents(w http.ResponseWriter, r *http.Request) { a.events(w, r, "") }

func (a *API) resourceEvents(w http.ResponseWriter, r *http.Request) {
	a.events(w, r, chi.URLParam(r, "res"))
}

// showEvent answers one event of a resource (or of the stack, under the
// stack's name).
func (a *API) showEvent(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := chi.URLParam(r, "event")
	seq, ok := eventSeq(d, id)
	if ok {
		evs, _, err := a.Engine.Events(r.Context(), d.ID, seq-1)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if len(evs) > 0 && evs[0].Seq == seq {
			m := a.masker(r.Context(), d)
			if v, shown := a.eventView(r, d, evs[0], m.String(evs[0].Message)); shown && v["resource_name"] == chi.URLParam(r, "res") {
				osapi.WriteJSON(w, http.StatusOK, map[string]any{"event": v})
				return
			}
		}
	}
	a.fail(w, r, errNotFound("The Event ("+id+") could not be found."))
}
