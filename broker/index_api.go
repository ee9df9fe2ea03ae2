package broker

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// indexRoutes serves /v1/index: the admin's view of the resource index and
// the rebuild that reconciles it with the peers.
func (s *Server) indexRoutes(r chi.Router) {
	r.Use(identity.RequireCloudAdmin)
	r.Post("/rebuild", s.rebuildIndex)
}

// rebuildIndex scans every connected peer for resources this installation
// marked and reconciles the index with them (index.Rebuild). It answers
// the report; a peer that could not be listed is named in failed_peers and
// its entries are left alone.
func (s *Server) rebuildIndex(w http.ResponseWriter, r *http.Request) {
	if s.Index == nil || s.Pool == nil {
		writeJSONError(w, r, http.StatusNotImplemented, "this broker keeps no resource index")
		return
	}
	rep, err := s.Index.Rebuild(r.Context(), s.Pool.Members(), s.BrokerID, 30*time.Second)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rebuild": rep})
}
