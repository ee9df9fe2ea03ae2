package object

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// Info describes an object as a tenant sees it: a static large object's
// manifest (SLO) shows the whole object's size and ETag.
type Info struct {
	peers.ObjectInfo
	// SLO marks a static large object's manifest (largeobj.go).
	SLO bool
	// DLO is a dynamic large object's manifest's "container/prefix"
	// (X-Object-Manifest); empty for other objects.
	DLO string
}

// PutSpec is a new object beside its bytes.
type PutSpec struct {
	// Size is the exact length, or -1 when the body is chunked.
	Size int64
	// ETag, when set, is the MD5 the bytes must have (else ErrETagMismatch
	// and nothing stored).
	ETag        string
	ContentType string
	Metadata    map[string]string
	DeleteAt    time.Time
	// DLO, when set, makes the object a dynamic large object's manifest
	// over the segments "container/prefix" names (X-Object-Manifest).
	DLO string
}

// target resolves account/container for an object call: the container's
// record and its peer.
func (s *Service) target(ctx context.Context, c Caller, account, container string, op Op) (Container, peers.Objects, error) {
	ct, err := s.authorize(ctx, c, account, container, op)
	if err != nil {
		return Container{}, nil, err
	}
	o, err := s.objects(ct)
	return ct, o, err
}

func checkObject(name string, meta map[string]string) error {
	if err := peers.CheckObjectName(name); err != nil {
		return invalid("Object name must be 1 to %d bytes of UTF-8 without NUL", peers.MaxObjectNameBytes)
	}
	return checkMeta("object", meta)
}

// PutObject streams data into account/container/name. Known sizes are
// checked against MaxObjectSize and the quotas before a byte is read;
// a chunked body is cut off where it would pass them. In a versioned
// container the object it replaces is archived first.
func (s *Service) PutObject(ctx context.Context, c Caller, account, container, name string, data io.Reader, spec PutSpec) (Info, error) {
	ct, objects, err := s.putTarget(ctx, c, account, container, name, spec)
	if err != nil {
		return Info{}, err
	}
	if err := s.archive(ctx, c, ct, objects, name); err != nil {
		return Info{}, err
	}
	return s.putObject(ctx, ct, objects, name, data, spec)
}

// putTarget resolves and checks a new object's container, name,
// metadata and content type.
func (s *Service) putTarget(ctx context.Context, c Caller, account, container, name string, spec PutSpec) (Container, peers.Objects, error) {
	ct, objects, err := s.target(ctx, c, account, container, OpWrite)
	if err != nil {
		return Container{}, nil, err
	}
	if err := checkObject(name, spec.Metadata); err != nil {
		return Container{}, nil, err
	}
	if err := checkType(spec.ContentType); err != nil {
		return Container{}, nil, err
	}
	if err := checkManifest(spec.DLO); err != nil {
		return Container{}, nil, err
	}
	return ct, objects, nil
}

// checkManifest refuses a DLO manifest that is not "container/prefix".
func checkManifest(m string) error {
	if c, _, ok := strings.Cut(m, "/"); m != "" && (!ok || c == "") {
		return invalid("X-Object-Manifest must be in the format container/prefix")
	}
	return nil
}

// putObject stores an object in a container the caller may write to.
func (s *Service) putObject(ctx context.Context, ct Container, objects peers.Objects, name string, data io.Reader, spec PutSpec) (Info, error) {
	container := ct.Name
	if spec.DLO != "" {
		spec.ContentType = dloType(spec.ContentType, spec.DLO)
	}
	if spec.Size > MaxObjectSize {
		return Info{}, &Error{Message: "Your request is too large.", Err: ErrTooLarge}
	}
	room, err := s.room(ctx, ct)
	if err != nil {
		return Info{}, err
	}
	if spec.Size >= 0 && spec.Size > room {
		return Info{}, &Error{Message: "Upload exceeds quota.", Err: ErrOverQuota}
	}
	body := &countingReader{r: data, max: min(room, MaxObjectSize)}
	info, err := objects.PutObject(ctx, ct.PeerContainer, name, body,
		peers.ObjectSpec{Size: spec.Size, ETag: spec.ETag, ContentType: spec.ContentType, Metadata: spec.Metadata, DeleteAt: spec.DeleteAt})
	s.usage.forget(ct.PeerContainer)
	if err != nil {
		return Info{}, body.explain(err, spec, "storing "+container+"/"+name)
	}
	return view(info), nil
}

// room is how many bytes the container may still take under its own and
// its account's byte quotas, and whether one more object fits its count
// quota (room 0 when not). Without quotas it is MaxObjectSize.
func (s *Service) room(ctx context.Context, ct Container) (int64, error) {
	room := int64(MaxObjectSize)
	qb, hasBytes := quotaOf(ct.Meta, metaQuotaBytes)
	qc, hasCount := quotaOf(ct.Meta, metaQuotaCount)
	if hasBytes || hasCount {
		st, err := s.stats(ctx, ct, 0)
		if err != nil {
			return 0, err
		}
		if hasCount && st.Objects+1 > qc {
			return 0, &Error{Message: "Upload exceeds quota.", Err: ErrOverQuota}
		}
		if hasBytes {
			room = min(room, max(qb-st.Bytes, 0))
		}
	}
	a, err := s.account(ctx, ct.Project)
	if err != nil {
		return 0, err
	}
	if qa, ok := quotaOf(a.Meta, metaQuotaBytes); ok {
		cts, err := s.projectContainers(ctx, ct.Project)
		if err != nil {
			return 0, err
		}
		var used int64
		for _, st := range s.usages(ctx, cts) {
			used += st.Bytes
		}
		room = min(room, max(qa-used, 0))
	}
	return room, nil
}

func quotaOf(meta map[string]string, key string) (int64, bool) {
	v, ok := meta[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

// countingReader counts what a peer read of a request body, cuts the body
// off past max (a quota or the size limit), and remembers the body's own
// failure, so a peer's refusal can be told apart: the client's body
// failed, passed a limit, or (read whole) did not match its ETag.
type countingReader struct {
	r      io.Reader
	n, max int64
	over   bool
	err    error // the body's own error, not io.EOF
	eof    bool
}

var errOverLimit = errors.New("object: body over the limit")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.max && len(p) > 0 {
		// One byte past the limit says whether the body goes on.
		var one [1]byte
		k, err := c.r.Read(one[:])
		if k > 0 {
			c.over = true
			return 0, errOverLimit
		}
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			c.err = err
		}
		return 0, err
	}
	if rest := c.max - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	if err == io.EOF {
		c.eof = true
	} else if err != nil {
		c.err = err
	}
	return k, err
}

// explain maps a failed PutObject to the service's error.
func (c *countingReader) explain(err error, spec PutSpec, what string) error {
	switch {
	case c.over && c.max < MaxObjectSize:
		return &Error{Message: "Upload exceeds quota.", Err: ErrOverQuota}
	case c.over:
		return &Error{Message: "Your request is too large.", Err: ErrTooLarge}
	case c.err != nil, spec.Size >= 0 && c.n < spec.Size && !errors.Is(err, peers.ErrNotFound):
		return fmt.Errorf("%s: %w (%w)", what, ErrIncomplete, err)
	case errors.Is(err, peers.ErrInvalid) && spec.ETag != "" && (c.eof || (spec.Size >= 0 && c.n == spec.Size)):
		return &Error{Message: "Unprocessable Entity", Err: ErrETagMismatch}
	}
	return peerErr(err, what)
}

// GetObject opens an object's bytes (the range, when rng is set). The
// caller closes the reader. A range past the end returns the info and
// ErrRange.
func (s *Service) GetObject(ctx context.Context, c Caller, account, container, name string, rng *peers.ByteRange) (Info, io.ReadCloser, error) {
	ct, objects, err := s.readTarget(ctx, c, account, container, name)
	if err != nil {
		return Info{}, nil, err
	}
	if rng != nil {
		// A large object's range is its segments': the manifest's info
		// says whether this is one.
		info, err := s.headObject(ctx, objects, ct, name)
		if err != nil {
			return Info{}, nil, err
		}
		switch {
		case info.SLO:
			return s.openSLO(ctx, c, objects, ct, name, rng)
		case info.DLO != "":
			return s.openDLO(ctx, c, account, info, rng)
		}
	}
	pinfo, rc, err := objects.GetObject(ctx, ct.PeerContainer, name, rng)
	if err != nil {
		return view(pinfo), nil, peerErr(err, "reading "+container+"/"+name)
	}
	switch info := view(pinfo); {
	case info.SLO:
		rc.Close()
		return s.openSLO(ctx, c, objects, ct, name, nil)
	case info.DLO != "":
		rc.Close()
		return s.openDLO(ctx, c, account, info, nil)
	}
	return view(pinfo), rc, nil
}

// readTarget is target for reading one object: a name no object can have
// is not found.
func (s *Service) readTarget(ctx context.Context, c Caller, account, container, name string) (Container, peers.Objects, error) {
	ct, objects, err := s.target(ctx, c, account, container, OpRead)
	if err != nil {
		return Container{}, nil, err
	}
	if err := peers.CheckObjectName(name); err != nil {
		return Container{}, nil, fmt.Errorf("object %q: %w", name, ErrNotFound)
	}
	return ct, objects, nil
}

// HeadObject returns an object's info (a dynamic large object's size
// and ETag are its segments', listed now).
func (s *Service) HeadObject(ctx context.Context, c Caller, account, container, name string) (Info, error) {
	ct, objects, err := s.readTarget(ctx, c, account, container, name)
	if err != nil {
		return Info{}, err
	}
	info, err := s.headObject(ctx, objects, ct, name)
	if err != nil || info.DLO == "" {
		return info, err
	}
	info, _, err = s.dloSegments(ctx, c, account, info)
	return info, err
}

func (s *Service) headObject(ctx context.Context, objects peers.Objects, ct Container, name string) (Info, error) {
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	info, err := objects.HeadObject(pctx, ct.PeerContainer, name)
	return view(info), peerErr(err, "object "+ct.Name+"/"+name)
}

// Update is an object POST: the peer's metadata replacement, and the
// dynamic large object manifest ("container/prefix") the object is to
// have, as X-Object-Manifest on a POST sets it.
type Update struct {
	peers.ObjectUpdate
	// DLO makes the object a DLO manifest over it (a plain object too);
	// empty makes it a plain object, as Swift's POST without
	// X-Object-Manifest drops the one the object had (a real Swift's
	// behaviour).
	DLO string
}

// UpdateObject replaces an object's metadata, content type (when set),
// expiry and DLO manifest, as Swift's POST does. An SLO manifest stays
// one; it cannot become a DLO.
func (s *Service) UpdateObject(ctx context.Context, c Caller, account, container, name string, update Update) (Info, error) {
	ct, objects, err := s.target(ctx, c, account, container, OpWrite)
	if err != nil {
		return Info{}, err
	}
	if err := checkObject(name, update.Metadata); err != nil {
		return Info{}, err
	}
	if err := checkType(update.ContentType); err != nil {
		return Info{}, err
	}
	if err := checkManifest(update.DLO); err != nil {
		return Info{}, err
	}
	// The marks live in the content type, so it is always written: the
	// current one (without its mark) unless the POST sets one.
	cur, err := s.headObject(ctx, objects, ct, name)
	if err != nil {
		return Info{}, err
	}
	ctype := cmp.Or(update.ContentType, cur.ContentType)
	switch {
	case cur.SLO && update.DLO != "":
		return Info{}, invalid("X-Object-Manifest cannot be set on a static large object's manifest")
	case cur.SLO:
		ctype = sloType(ctype, cur.Size, cur.ETag)
	case update.DLO != "":
		ctype = dloType(ctype, update.DLO)
	}
	update.ContentType = ctype
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	info, err := objects.UpdateObject(pctx, ct.PeerContainer, name, update.ObjectUpdate)
	return view(info), peerErr(err, "updating "+container+"/"+name)
}

// DeleteObject removes an object. In a versioned container, history
// mode archives it first; stack mode puts its newest archived version
// back in its place instead, when there is one.
func (s *Service) DeleteObject(ctx context.Context, c Caller, account, container, name string) error {
	ct, objects, err := s.target(ctx, c, account, container, OpWrite)
	if err != nil {
		return err
	}
	if err := peers.CheckObjectName(name); err != nil {
		return fmt.Errorf("object %q: %w", name, ErrNotFound)
	}
	switch _, mode := ct.versions(); mode {
	case ModeHistory:
		if err := s.archive(ctx, c, ct, objects, name); err != nil {
			return err
		}
		if err := s.deleteMarker(ctx, c, ct, name); err != nil {
			return err
		}
	case ModeStack:
		if restored, err := s.restore(ctx, c, ct, objects, name); restored || err != nil {
			return err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	err = objects.DeleteObject(pctx, ct.PeerContainer, name)
	s.usage.forget(ct.PeerContainer)
	return peerErr(err, "deleting "+container+"/"+name)
}

// CopySpec is a server-side copy's source and what the copy changes.
type CopySpec struct {
	// Account, Container and Name are the source (Account empty: the
	// destination's account).
	Account, Container, Name string
	// ContentType, when set, replaces the source's.
	ContentType string
	// Metadata is laid over the source's user metadata, or replaces it
	// all with FreshMetadata (Swift's X-Fresh-Metadata).
	Metadata      map[string]string
	FreshMetadata bool
	// DeleteAt is the copy's expiry; a copy never keeps its source's.
	DeleteAt time.Time
}

// CopyObject copies an object into account/container/name, streaming
// its bytes from the source's peer to the destination's (they may
// differ) through the broker, the source's ETag checked on arrival. It
// returns the new object and the source's info.
func (s *Service) CopyObject(ctx context.Context, c Caller, account, container, name string, src CopySpec) (Info, Info, error) {
	if src.Account == "" {
		src.Account = account
	}
	if _, err := s.authorize(ctx, c, account, container, OpWrite); err != nil {
		return Info{}, Info{}, err
	}
	srcInfo, rc, err := s.GetObject(ctx, c, src.Account, src.Container, src.Name, nil)
	if err != nil {
		return Info{}, Info{}, err
	}
	defer rc.Close()
	meta := src.Metadata
	if !src.FreshMetadata {
		meta = maps.Clone(srcInfo.Metadata)
		if meta == nil {
			meta = map[string]string{}
		}
		maps.Copy(meta, src.Metadata)
	}
	ctype := src.ContentType
	if ctype == "" {
		ctype = srcInfo.ContentType
	}
	etag := srcInfo.ETag
	if srcInfo.SLO || srcInfo.DLO != "" {
		etag = "" // a large object's ETag is its segments', not its bytes' MD5
	}
	info, err := s.PutObject(ctx, c, account, container, name, rc,
		PutSpec{Size: srcInfo.Size, ETag: etag, ContentType: ctype, Metadata: meta, DeleteAt: src.DeleteAt})
	return info, srcInfo, err
}

// ListObjects lists a container's objects with Swift's paging and
// roll-up (the peer applies them), with the container's usage for the
// listing's headers.
func (s *Service) ListObjects(ctx context.Context, c Caller, account, container string, opts ListOptions) (ContainerInfo, []peers.ObjectEntry, error) {
	ct, objects, err := s.target(ctx, c, account, container, OpList)
	if err != nil {
		return ContainerInfo{}, nil, err
	}
	if err := peers.CheckListOptions(opts); err != nil {
		return ContainerInfo{}, nil, invalid("Maximum limit is %d", peers.MaxListLimit)
	}
	st, err := s.stats(ctx, ct, 0)
	if err != nil {
		return ContainerInfo{}, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	rows, err := objects.ListObjects(pctx, ct.PeerContainer, opts)
	if err != nil {
		return ContainerInfo{}, nil, peerErr(err, "listing "+container)
	}
	for i := range rows {
		if rows[i].Subdir == "" {
			rows[i].ObjectInfo = view(rows[i].ObjectInfo).ObjectInfo
		}
	}
	return ContainerInfo{Container: ct, ContainerStats: st, Owner: owns(c, account)}, rows, nil
}

// ListPath lists the objects directly in a pseudo-directory, as Swift's
// ?path= does (checked against a real Swift): the names under path+"/"
// (path "": the top level) that hold no "/" but maybe a last one (a
// directory marker such as "a/e/" for path "a"), never an object named
// path+"/" itself; opts' prefix and delimiter give way to the path. The
// peer rolls each subdirectory up to one row: a marker object of that
// very name is looked for (one short listing per subdirectory row), the
// rest skipped, and a page is filled by asking again from the last row
// until it is full or the container ends.
func (s *Service) ListPath(ctx context.Context, c Caller, account, container, path string, opts ListOptions) (ContainerInfo, []peers.ObjectEntry, error) {
	opts.Prefix, opts.Delimiter = "", "/"
	if path != "" {
		opts.Prefix = strings.TrimRight(path, "/") + "/"
	}
	if opts.Limit == 0 {
		opts.Limit = peers.MaxListLimit
	}
	var out []peers.ObjectEntry
	for {
		info, rows, err := s.ListObjects(ctx, c, account, container, opts)
		if err != nil {
			return info, nil, err
		}
		for _, r := range rows {
			if r.Subdir == "" {
				if r.Name != opts.Prefix {
					out = append(out, r)
				}
				continue
			}
			_, in, err := s.ListObjects(ctx, c, account, container, ListOptions{Prefix: r.Subdir, Limit: 2})
			if err != nil {
				return info, nil, err
			}
			// Swift reversed meets the subdirectory's last name first
			// and skips the whole of it, its marker too, unless the
			// marker is all it holds: so here.
			if len(in) > 0 && in[0].Name == r.Subdir && (!opts.Reverse || len(in) == 1) {
				out = append(out, in[0])
			}
		}
		if len(out) >= opts.Limit || len(rows) < opts.Limit {
			return info, out[:min(len(out), opts.Limit)], nil
		}
		last := rows[len(rows)-1]
		opts.Marker = cmp.Or(last.Subdir, last.Name)
	}
}
