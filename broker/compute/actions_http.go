package compute

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// actionRoutes mounts a server's actions (POST /servers/{id}/action) under
// /servers/{id}; member is the role check that changing a server takes.
func (n *Nova) actionRoutes(r chi.Router, member func(http.Handler) http.Handler) {
	r.With(member).Post("/action", n.serverAction)
}

// serverAction runs os-start, os-stop, reboot {type} and
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
		switch name {
		case "os-start":
			err = n.Servers.Action(r.Context(), c, id, peers.ActionStart)
		case "os-stop":
			err = n.Servers.Action(r.Context(), c, id, peers.ActionStop)
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
