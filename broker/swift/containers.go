package swift

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/peers"
)

// storagePolicy is the one storage policy the broker offers (in /info).
const storagePolicy = "Policy-0"

func (a *API) accountGet(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	opts, none, bad := listOptions(r)
	if bad != "" {
		writeText(w, r, http.StatusPreconditionFailed, bad)
		return
	}
	info, err := a.Objects.GetAccount(r.Context(), c, t.account)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("X-Account-Container-Count", strconv.Itoa(info.Containers))
	h.Set("X-Account-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
	h.Set("X-Timestamp", timestamp(info.UpdatedAt))
	h.Set("X-Account-Storage-Policy-"+storagePolicy+"-Container-Count", strconv.Itoa(info.Containers))
	h.Set("X-Account-Storage-Policy-"+storagePolicy+"-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Account-Storage-Policy-"+storagePolicy+"-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
	setMeta(h, "Account", info.Meta)
	f := format(r)
	if r.Method == http.MethodHead {
		h.Set("Content-Type", contentType(f))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var rows []object.ContainerEntry
	if !none {
		if rows, err = a.Objects.ListContainers(r.Context(), c, t.account, opts); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	writeListing(w, r, f, accountBody(f, t.account, rows), len(rows) == 0)
}

func (a *API) accountPost(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	if _, err := a.Objects.UpdateAccount(r.Context(), c, t.account, metaChange(r.Header, "Account")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkPolicy refuses a storage policy the broker does not have, as Swift
// does.
func checkPolicy(w http.ResponseWriter, r *http.Request) bool {
	if p := r.Header.Get("X-Storage-Policy"); p != "" && p != storagePolicy {
		writeText(w, r, http.StatusBadRequest, "Invalid X-Storage-Policy '"+p+"'")
		return false
	}
	return true
}

func (a *API) containerPut(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	if !checkPolicy(w, r) {
		return
	}
	vers, bad := versionsChange(r.Header)
	if bad != "" {
		writeText(w, r, http.StatusBadRequest, bad)
		return
	}
	created, err := a.Objects.CreateContainer(r.Context(), c, t.account, t.container, metaChange(r.Header, "Container"), aclChange(r.Header), vers)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if created {
		w.Header().Set("Content-Length", "0")
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusCreated)
		return
	}
	writeStatus(w, r, http.StatusAccepted)
}

func (a *API) containerPost(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	vers, bad := versionsChange(r.Header)
	if bad != "" {
		writeText(w, r, http.StatusBadRequest, bad)
		return
	}
	if _, err := a.Objects.UpdateContainer(r.Context(), c, t.account, t.container, metaChange(r.Header, "Container"), aclChange(r.Header), vers); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) containerDelete(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	if err := a.Objects.DeleteContainer(r.Context(), c, t.account, t.container); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func containerHeaders(h http.Header, info object.ContainerInfo) {
	h.Set("X-Container-Object-Count", strconv.FormatInt(info.Objects, 10))
	h.Set("X-Container-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
	h.Set("X-Timestamp", timestamp(info.CreatedAt))
	h.Set("X-Put-Timestamp", timestamp(info.UpdatedAt))
	h.Set("Last-Modified", info.UpdatedAt.UTC().Format(http.TimeFormat))
	h.Set("X-Storage-Policy", storagePolicy)
	setMeta(h, "Container", info.Meta)
	if !info.Owner {
		// Temp URL keys sign for the owner: a grantee does not see them.
		h.Del("X-Container-Meta-Temp-Url-Key")
		h.Del("X-Container-Meta-Temp-Url-Key-2")
	}
	// ACLs are the owner's business, as Swift hides them from others.
	if info.Owner && info.ReadACL != "" {
		h.Set("X-Container-Read", info.ReadACL)
	}
	if info.Owner && info.WriteACL != "" {
		h.Set("X-Container-Write", info.WriteACL)
	}
	if info.VersionsLocation != "" {
		h.Set("X-Versions-Location", info.VersionsLocation)
	}
	if info.HistoryLocation != "" {
		h.Set("X-History-Location", info.HistoryLocation)
	}
}

// versionsChange reads X-Versions-Location and X-History-Location (an
// empty value, or X-Remove-Versions-Location or
// X-Remove-History-Location, turns versioning off) as Swift's
// versioned_writes does: nil is no change; bad is a 400's text.
func versionsChange(h http.Header) (vers *object.VersionsChange, bad string) {
	stack, hasStack := h["X-Versions-Location"]
	history, hasHistory := h["X-History-Location"]
	first := func(vs []string) string {
		if len(vs) == 0 {
			return ""
		}
		if u, err := url.PathUnescape(vs[0]); err == nil {
			return u
		}
		return vs[0]
	}
	switch {
	case hasStack && hasHistory && first(history) != "" && first(stack) != "":
		return nil, "Only one of X-Versions-Location or X-History-Location may be specified"
	case hasHistory && first(history) != "":
		return &object.VersionsChange{Mode: object.ModeHistory, Location: first(history)}, ""
	case hasStack && first(stack) != "":
		return &object.VersionsChange{Mode: object.ModeStack, Location: first(stack)}, ""
	case hasStack || hasHistory, h.Get("X-Remove-Versions-Location") != "", h.Get("X-Remove-History-Location") != "":
		return &object.VersionsChange{}, ""
	}
	return nil, ""
}

// aclChange reads X-Container-Read and -Write (an empty value removes)
// and X-Remove-Container-Read and -Write.
func aclChange(h http.Header) object.ACLChange {
	var out object.ACLChange
	for _, f := range []struct {
		name string
		to   **string
	}{{"Read", &out.Read}, {"Write", &out.Write}} {
		if vs, ok := h["X-Container-"+f.name]; ok && len(vs) > 0 {
			v := vs[0]
			*f.to = &v
		}
		if _, ok := h["X-Remove-Container-"+f.name]; ok {
			empty := ""
			*f.to = &empty
		}
	}
	return out
}

func (a *API) containerGet(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	f := format(r)
	if r.Method == http.MethodHead {
		info, err := a.Objects.GetContainer(r.Context(), c, t.account, t.container)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		containerHeaders(w.Header(), info)
		w.Header().Set("Content-Type", contentType(f))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	opts, none, bad := listOptions(r)
	if bad != "" {
		writeText(w, r, http.StatusPreconditionFailed, bad)
		return
	}
	var rows []peers.ObjectEntry
	var info object.ContainerInfo
	var err error
	if none {
		info, err = a.Objects.GetContainer(r.Context(), c, t.account, t.container)
	} else if path, ok := r.URL.Query()["path"]; ok {
		info, rows, err = a.Objects.ListPath(r.Context(), c, t.account, t.container, path[0], opts)
	} else {
		info, rows, err = a.Objects.ListObjects(r.Context(), c, t.account, t.container, opts)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	containerHeaders(w.Header(), info)
	writeListing(w, r, f, containerBody(f, t.container, rows), len(rows) == 0)
}
