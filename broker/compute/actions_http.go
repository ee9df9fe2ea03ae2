package compute

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// actionRoutes mounts a server's actions (POST /servers/{id}/action) under
// /servers/{id}; member is the role check that changing a server takes.
func (n *Nova) actionRoutes(r chi.Router, member func(http.Handler) http.Handler) {
	r.With(member).Post("/action", n.serverAction)
	r.Get("/os-instance-actions", n.listInstanceActions)
	r.Get("/os-instance-actions/{request}", n.showInstanceAction)
}

// powerActions are the actions without a body that map onto a peer's
// ServerAction.
var powerActions = map[string]peers.ServerAction{
	"os-start": peers.ActionStart, "os-stop": peers.ActionStop,
	"pause": peers.ActionPause, "unpause": peers.ActionUnpause,
	"suspend": peers.ActionSuspend, "resume": peers.ActionResume,
	"confirmResize": peers.ActionConfirmResize, "revertResize": peers.ActionRevertResize,
}

// serverAction runs os-start, os-stop, reboot {type}, pause, unpause,
// suspend, resume, createImage {name, metadata}, resize {flavorRef},
// confirmResize, revertResize, rebuild, shelve, shelveOffload, unshelve
// (lifecycle_http.go), lock
// {locked_reason}, unlock, os-resetState {state} (admins) and
// os-getConsoleOutput {length}.
func (n *Nova) serverAction(w http.ResponseWriter, r *http.Request) {
	var req map[string]json.RawMessage
	if !decode(w, r, &req, `{"ACTION": {...}}`) {
		return
	}
	if len(req) != 1 {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input: give exactly one action")
		return
	}
	id, c := chi.URLParam(r, "id"), caller(r)
	for name, body := range req {
		var err error
		if action, ok := powerActions[name]; ok {
			if err := n.Servers.Action(r.Context(), c, id, action); err != nil {
				n.writeError(w, r, err)
				return
			}
			if action == peers.ActionConfirmResize {
				w.WriteHeader(http.StatusNoContent) // as Nova answers it
				return
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		switch name {
		case "createImage":
			n.createImage(w, r, id, body)
			return
		case "rebuild":
			n.rebuild(w, r, id, body)
			return
		case "shelve", "shelveOffload", "unshelve":
			n.shelveActions(w, r, id, name, body)
			return
		case "resize":
			var b struct {
				FlavorRef  json.RawMessage `json:"flavorRef"`
				DiskConfig string          `json:"OS-DCF:diskConfig"`
			}
			if json.Unmarshal(body, &b) != nil || refString(b.FlavorRef) == "" {
				osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute resize: expected {"flavorRef": ...}`)
				return
			}
			if b.DiskConfig != "" && b.DiskConfig != "MANUAL" {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute OS-DCF:diskConfig: only MANUAL is offered (the guest grows its own partitions)")
				return
			}
			err = n.Servers.Resize(r.Context(), c, id, refString(b.FlavorRef))
		case "lock":
			var b struct {
				Reason *string `json:"locked_reason"`
			}
			if string(body) != "null" && json.Unmarshal(body, &b) != nil {
				osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute lock: expected null or {"locked_reason": ...}`)
				return
			}
			reason := ""
			if b.Reason != nil {
				if !at(r, "2.73") { // Nova takes a reason from 2.73 on
					osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute lock: locked_reason needs microversion 2.73 or later")
					return
				}
				reason = *b.Reason
			}
			err = n.Servers.Lock(r.Context(), c, id, reason)
		case "unlock":
			err = n.Servers.Unlock(r.Context(), c, id)
		case "addSecurityGroup", "removeSecurityGroup":
			n.securityGroupAction(w, r, name, body)
			return
		case "os-resetState":
			var b struct {
				State string `json:"state"`
			}
			if json.Unmarshal(body, &b) != nil {
				osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute os-resetState: expected {"state": "active"|"error"}`)
				return
			}
			err = n.Servers.ResetState(r.Context(), c, id, b.State)
		case "reboot":
			var b struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(body, &b) != nil {
				osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute reboot: expected {"type": "SOFT"|"HARD"}`)
				return
			}
			switch strings.ToUpper(b.Type) {
			case "SOFT":
				err = n.Servers.Action(r.Context(), c, id, peers.ActionReboot)
			case "HARD":
				err = n.Servers.Action(r.Context(), c, id, peers.ActionHardReboot)
			default:
				osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute type. Value: %s. 'type' must be one of SOFT, HARD", b.Type))
				return
			}
		case "os-getConsoleOutput":
			var b struct {
				Length json.RawMessage `json:"length"`
			}
			if json.Unmarshal(body, &b) != nil {
				osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute os-getConsoleOutput: expected {"length": N}`)
				return
			}
			lines := 0
			if l := strings.Trim(string(b.Length), `"`); l != "" && l != "null" {
				if lines, err = strconv.Atoi(l); err != nil || lines < -1 {
					osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute length: want an integer of -1 or more")
					return
				}
			}
			out, err := n.Servers.Console(r.Context(), c, id, lines)
			if err != nil {
				n.writeError(w, r, err)
				return
			}
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"output": out})
			return
		default:
			osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("There is no such action: %s", name))
			return
		}
		if err != nil {
			n.writeError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// novaMicroTime is Nova's time format in instance actions.
const novaMicroTime = "2006-01-02T15:04:05.000000"

// instanceActionView renders an action as Nova does at the request's
// microversion: updated_at from 2.58; events (show only) to admins, and
// to everyone from 2.51 without the traceback; an event's hostId from
// 2.62 (its host to admins); its details from 2.84.
func instanceActionView(r *http.Request, id string, a InstanceAction, withEvents, admin bool) map[string]any {
	var msg any
	if a.Message != "" {
		msg = a.Message
	}
	v := map[string]any{
		"action": a.Action, "instance_uuid": id, "message": msg, "project_id": a.ProjectID, "request_id": a.RequestID,
		"start_time": a.StartTime.UTC().Format(novaMicroTime), "user_id": a.UserID,
	}
	if at(r, "2.58") {
		v["updated_at"] = a.UpdatedAt.UTC().Format(novaMicroTime)
	}
	if !withEvents || !admin && !at(r, "2.51") {
		return v
	}
	evs := make([]map[string]any, 0, len(a.Events))
	for _, e := range a.Events {
		ev := map[string]any{"event": e.Event, "start_time": e.Start.UTC().Format(novaMicroTime),
			"finish_time": e.Finish.UTC().Format(novaMicroTime), "result": e.Result}
		if admin {
			var tb any
			if e.Traceback != "" {
				tb = e.Traceback
			}
			ev["traceback"] = tb
		}
		if at(r, "2.62") { // where it ran: the peer (an admin's), and its hash for everyone
			ev["hostId"] = hostIDOf(a.ProjectID, e.PeerID, e.Hypervisor)
			if admin {
				ev["host"] = e.Host
			}
		}
		if at(r, "2.84") {
			ev["details"] = nil // the broker records no fault text for an event
		}
		evs = append(evs, ev)
	}
	v["events"] = evs
	return v
}

// listInstanceActions answers GET /servers/{id}/os-instance-actions with
// changes-since, changes-before, limit and marker (a request ID).
func (n *Nova) listInstanceActions(w http.ResponseWriter, r *http.Request) {
	q, id := r.URL.Query(), chi.URLParam(r, "id")
	var since, before time.Time
	// The filters and paging came with 2.58 (changes-before with 2.66);
	// before, Nova ignores them, and so does the broker.
	for name, dst := range map[string]*time.Time{"changes-since": &since, "changes-before": &before} {
		if s := q.Get(name); s != "" && at(r, map[string]string{"changes-since": "2.58", "changes-before": "2.66"}[name]) {
			t, err := parseNovaTime(s)
			if err != nil {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters "+name+": "+err.Error())
				return
			}
			*dst = t
		}
	}
	limit := maxListLimit
	if s := q.Get("limit"); s != "" && at(r, "2.58") {
		l, err := strconv.Atoi(s)
		if err != nil || l < 0 {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters limit: must be a non-negative integer")
			return
		}
		if l > 0 && l < maxListLimit {
			limit = l
		}
	}
	all, err := n.Servers.InstanceActions(r.Context(), caller(r), id, since, before)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if m := q.Get("marker"); m != "" && at(r, "2.58") {
		i := slices.IndexFunc(all, func(a InstanceAction) bool { return a.RequestID == m })
		if i < 0 {
			osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Marker %s could not be found.", m))
			return
		}
		all = all[i+1:]
	}
	out := make([]map[string]any, 0, min(len(all), limit))
	for _, a := range all[:min(len(all), limit)] {
		out = append(out, instanceActionView(r, id, a, false, false))
	}
	body := map[string]any{"instanceActions": out}
	if len(all) > limit {
		next := r.URL.Query()
		next.Set("marker", all[limit-1].RequestID)
		next.Set("limit", strconv.Itoa(limit))
		body["links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
	}
	osapi.WriteJSON(w, http.StatusOK, body)
}

func (n *Nova) showInstanceAction(w http.ResponseWriter, r *http.Request) {
	id, c := chi.URLParam(r, "id"), caller(r)
	a, err := n.Servers.InstanceAction(r.Context(), c, id, chi.URLParam(r, "request"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"instanceAction": instanceActionView(r, id, a, true, c.Admin)})
}
