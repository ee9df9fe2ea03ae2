package swift

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/object"
)

// Temp URLs, as Swift's tempurl middleware signs them: an HMAC (SHA-1,
// SHA-256 or SHA-512) of "METHOD\nEXPIRES\nPATH" under one of the
// account's or the container's temp URL keys (X-Account-Meta-Temp-URL-Key,
// -Key-2, X-Container-Meta-Temp-URL-Key, -Key-2), in the query as
// temp_url_sig and temp_url_expires (Unix seconds or ISO 8601 UTC). PATH
// is the object's path from /v1/ (or from /swift/v1/, which a client
// given the whole storage URL signs); with temp_url_prefix, "prefix:" and
// the path up to the prefix, and the URL serves every object under it.

// tempURLMethods are the methods a temp URL may be signed for.
var tempURLMethods = []string{"GET", "HEAD", "PUT", "POST", "DELETE"}

// tempURLDigests are the digests accepted, by name and by the length of
// a hex signature.
var tempURLDigests = map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}

func digestOf(sig string) (func() hash.Hash, []byte, bool) {
	if name, b64, ok := strings.Cut(sig, ":"); ok {
		h, known := tempURLDigests[name]
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
		if !known || err != nil {
			return nil, nil, false
		}
		return h, raw, true
	}
	raw, err := hex.DecodeString(sig)
	if err != nil {
		return nil, nil, false
	}
	switch len(raw) {
	case sha1.Size:
		return sha1.New, raw, true
	case sha256.Size:
		return sha256.New, raw, true
	case sha512.Size:
		return sha512.New, raw, true
	}
	return nil, nil, false
}

// expiresOf reads temp_url_expires.
func expiresOf(v string) (int64, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, true
	}
	if t, err := time.Parse("2006-01-02T15:04:05Z", v); err == nil {
		return t.Unix(), true
	}
	return 0, false
}

// tempURL checks a request that carries temp_url_sig: the caller it acts
// as (the account's owner, for this one object and method), or false.
func (a *API) tempURL(r *http.Request, t target) (object.Caller, bool) {
	q := r.URL.Query()
	if t.level != 3 || r.Header.Get("X-Copy-From") != "" {
		return object.Caller{}, false
	}
	expires, ok := expiresOf(q.Get("temp_url_expires"))
	if !ok || time.Now().Unix() >= expires {
		return object.Caller{}, false
	}
	newHash, sig, ok := digestOf(q.Get("temp_url_sig"))
	if !ok {
		return object.Caller{}, false
	}
	full := r.URL.Path
	paths := []string{full, full[strings.Index(full, "/v1/"):]}
	if prefix, has := q["temp_url_prefix"]; has {
		if !strings.HasPrefix(t.object, prefix[0]) {
			return object.Caller{}, false
		}
		cut := len(full) - len(t.object) + len(prefix[0])
		paths = []string{"prefix:" + full[:cut], "prefix:" + full[strings.Index(full, "/v1/"):cut]}
	}
	methods := []string{r.Method}
	if r.Method == http.MethodHead {
		methods = []string{"HEAD", "GET", "PUT"}
	}
	keys, err := a.Objects.TempURLKeys(r.Context(), t.account, t.container)
	if err != nil {
		return object.Caller{}, false
	}
	for _, key := range keys {
		for _, m := range methods {
			for _, p := range paths {
				mac := hmac.New(newHash, []byte(key))
				mac.Write([]byte(m + "\n" + strconv.FormatInt(expires, 10) + "\n" + p))
				if hmac.Equal(mac.Sum(nil), sig) {
					write := r.Method != http.MethodGet && r.Method != http.MethodHead
					return object.Caller{Project: t.account, Write: write}, true
				}
			}
		}
	}
	return object.Caller{}, false
}

// tempURLWriter applies tempurl's response rules: user metadata is not
// shown (but X-Object-Meta-Public-*), and a download is an attachment
// named after the object unless ?inline.
type tempURLWriter struct {
	http.ResponseWriter
	r           *http.Request
	object      string
	wroteHeader bool
}

func (w *tempURLWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		h := w.Header()
		for k := range h {
			if strings.HasPrefix(k, "X-Object-Meta-") && !strings.HasPrefix(k, "X-Object-Meta-Public-") {
				delete(h, k)
			}
		}
		if code < 300 && (w.r.Method == http.MethodGet || w.r.Method == http.MethodHead) {
			q := w.r.URL.Query()
			name := q.Get("filename")
			if name == "" {
				name = path.Base(w.object)
			}
			disp := "attachment"
			if _, inline := q["inline"]; inline {
				disp = "inline"
				if q.Get("filename") == "" {
					name = ""
				}
			}
			params := map[string]string{}
			if name != "" {
				params["filename"] = name
			}
			h.Set("Content-Disposition", mime.FormatMediaType(disp, params))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tempURLWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
