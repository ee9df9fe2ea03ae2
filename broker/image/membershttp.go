package image

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// memberView renders a member as Glance does.
func memberView(m Member) map[string]any {
	return map[string]any{"image_id": m.ImageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": glanceTime(m.CreatedAt), "updated_at": glanceTime(m.UpdatedAt), "schema": "/v2/schemas/member"}
}

// addMember answers POST /v2/images/{id}/members {"member": project}.
func (g *Glance) addMember(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Member *string `json:"member"`
	}
	if !decodeJSON(w, r, &body, `{"member": "<project ID>"}`) {
		return
	}
	if body.Member == nil {
		fault(w, r, http.StatusBadRequest, `Member to be added not specified: want {"member": "<project ID>"}.`)
		return
	}
	m, err := g.Images.AddMember(r.Context(), caller(r), chi.URLParam(r, "id"), *body.Member)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, memberView(m))
}

// listMembers answers GET /v2/images/{id}/members.
func (g *Glance) listMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := g.Images.ListMembers(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		g.fail(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberView(m))
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"members": out, "schema": "/v2/schemas/members"})
}

func (g *Glance) showMember(w http.ResponseWriter, r *http.Request) {
	m, err := g.Images.GetMember(r.Context(), caller(r), chi.URLParam(r, "id"), chi.URLParam(r, "member"))
	if err != nil {
		g.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, memberView(m))
}

// updateMember answers PUT /v2/images/{id}/members/{member} {"status": s}.
func (g *Glance) updateMember(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status *string `json:"status"`
	}
	if !decodeJSON(w, r, &body, `{"status": "pending|accepted|rejected"}`) {
		return
	}
	if body.Status == nil {
		fault(w, r, http.StatusBadRequest, `Status not specified: want {"status": "pending|accepted|rejected"}.`)
		return
	}
	m, err := g.Images.UpdateMember(r.Context(), caller(r), chi.URLParam(r, "id"), chi.URLParam(r, "member"), *body.Status)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, memberView(m))
}

func (g *Glance) deleteMember(w http.ResponseWriter, r *http.Request) {
	if err := g.Images.DeleteMember(r.Context(), caller(r), chi.URLParam(r, "id"), chi.URLParam(r, "member")); err != nil {
		g.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// The JSON schemas of a member and of a member list, as Glance serves
// them at /v2/schemas/member(s).
var memberSchema, membersSchema = buildMemberSchemas()

func buildMemberSchemas() (string, string) {
	type m = map[string]any
	member := m{"name": "member", "properties": m{
		"created_at": m{"type": "string", "description": "Date and time of image member creation"},
		"image_id":   m{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern},
		"member_id":  m{"type": "string", "description": "An identifier for the image member (tenantId)"},
		"schema":     m{"type": "string", "readOnly": true},
		"status":     m{"type": "string", "description": "The status of this image member", "enum": toAny(MemberStatuses)},
		"updated_at": m{"type": "string", "description": "Date and time of last modification of image member"},
	}}
	members := m{"name": "members", "properties": m{"members": m{"type": "array", "items": member}, "schema": m{"type": "string"}},
		"links": []m{{"rel": "schema", "href": "{schema}"}}}
	a, err := json.Marshal(member)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(members)
	if err != nil {
		panic(err)
	}
	return string(a), string(b)
}
