package swift

import (
	"encoding/json"
	"net/http"

	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/peers"
)

// Info serves /info: the capabilities the broker honours, and nothing it
// does not (clients read an absence and do without).
func (a *API) Info(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{
		"swift": map[string]any{
			"version":                   "cloudmux",
			"max_file_size":             object.MaxObjectSize,
			"max_meta_name_length":      peers.MaxObjectMetaKeyBytes,
			"max_meta_value_length":     peers.MaxObjectMetaValBytes,
			"max_meta_count":            peers.MaxObjectMetaCount,
			"max_meta_overall_size":     peers.MaxObjectMetaBytes,
			"max_object_name_length":    peers.MaxObjectNameBytes,
			"max_container_name_length": peers.MaxContainerNameBytes,
			"container_listing_limit":   peers.MaxListLimit,
			"account_listing_limit":     peers.MaxListLimit,
			"max_header_size":           8192,
			"extra_header_count":        0,
			"allow_account_management":  false,
			"account_autocreate":        true,
			"strict_cors_mode":          true,
			"policies":                  []map[string]any{{"name": storagePolicy, "default": true}},
		},
		"account_quotas":   map[string]any{},
		"container_quotas": map[string]any{},
		"slo": map[string]any{"max_manifest_segments": object.MaxManifestSegments, "max_manifest_size": object.MaxManifestSize,
			"min_segment_size": 1},
		"dlo":              map[string]any{"max_get_time": 86400},
		"versioned_writes": map[string]any{"allowed_flags": []string{"x-versions-location", "x-history-location"}},
		"bulk_delete":      map[string]any{"max_deletes_per_request": maxBulkDeletes, "max_failed_deletes": maxBulkFailed},
		"tempurl": map[string]any{
			"methods":                 tempURLMethods,
			"allowed_digests":         []string{"sha1", "sha256", "sha512"},
			"incoming_remove_headers": []string{},
			"incoming_allow_headers":  []string{},
			"outgoing_remove_headers": []string{"x-object-meta-*"},
			"outgoing_allow_headers":  []string{"x-object-meta-public-*"},
		},
	}
	raw, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(raw)
	}
}
