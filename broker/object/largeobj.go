package object

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// Static large objects (Swift's SLO). A manifest is an object holding
// the JSON list of its segments (Swift's stored form: name
// "/container/object", hash, bytes), whose content type carries the
// mark sloParam = "<total bytes>:<SLO ETag>" (the MD5 of the segments'
// ETags, as Swift computes it): the mark survives every peer (a content
// type is stored as sent) and shows in listings, so a listing row, a
// HEAD and a GET show the whole object's size and ETag without reading
// the manifest. Users cannot set the mark (checkType). A GET streams the
// segments in order, each from its own container's peer with the
// caller's identity, each checked against the ETag the manifest
// recorded; ranges cut across them.
const (
	sloParam = "cloudmux_slo"
	// dloParam marks a dynamic large object's manifest the same way, with
	// its X-Object-Manifest (query-escaped).
	dloParam = "cloudmux_dlo"
	// MaxManifestSegments and MaxManifestSize are Swift's defaults.
	MaxManifestSegments = 1000
	MaxManifestSize     = 8 << 20
)

// view is a peer's object info as a tenant sees it.
func view(info peers.ObjectInfo) Info {
	mt, params, err := mime.ParseMediaType(info.ContentType)
	if err == nil && params[dloParam] != "" {
		manifest, err := url.QueryUnescape(params[dloParam])
		if err == nil {
			delete(params, dloParam)
			info.ContentType = mime.FormatMediaType(mt, params)
			return Info{ObjectInfo: info, DLO: manifest}
		}
	}
	if err != nil || params[sloParam] == "" {
		return Info{ObjectInfo: info}
	}
	size, etag, ok := strings.Cut(params[sloParam], ":")
	n, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil {
		return Info{ObjectInfo: info}
	}
	delete(params, sloParam)
	info.ContentType = mime.FormatMediaType(mt, params)
	info.Size, info.ETag = n, etag
	return Info{ObjectInfo: info, SLO: true}
}

// sloType marks a content type as a manifest's.
func sloType(ctype string, size int64, etag string) string {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt, params = "application/octet-stream", map[string]string{}
	}
	params[sloParam] = strconv.FormatInt(size, 10) + ":" + etag
	return mime.FormatMediaType(mt, params)
}

// dloType marks a content type as a dynamic large object's manifest
// over manifest ("container/prefix").
func dloType(ctype, manifest string) string {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt, params = "application/octet-stream", map[string]string{}
	}
	params[dloParam] = url.QueryEscape(manifest)
	return mime.FormatMediaType(mt, params)
}

// checkType refuses a content type that carries the broker's marks.
func checkType(ctype string) error {
	for _, p := range []string{sloParam, dloParam} {
		if strings.Contains(strings.ToLower(ctype), p) {
			return invalid("Invalid Content-Type: the parameter %s is reserved", p)
		}
	}
	return nil
}

// dloSegments lists a dynamic large object's segments (the objects under
// its prefix, in name order, with the caller's identity) and returns its
// info with their total size and ETag (the MD5 of their ETags, as Swift).
func (s *Service) dloSegments(ctx context.Context, c Caller, account string, info Info) (Info, []storedSegment, error) {
	container, prefix, _ := strings.Cut(info.DLO, "/")
	var segs []storedSegment
	sum := md5.New()
	info.Size = 0
	opts := ListOptions{Prefix: prefix, Limit: peers.MaxListLimit}
	for {
		_, rows, err := s.ListObjects(ctx, c, account, container, opts)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return Info{}, nil, err
		}
		for _, r := range rows {
			sum.Write([]byte(r.ETag))
			if r.Size == 0 {
				// No bytes to add; and a manifest listed under its own
				// prefix is not read into itself.
				continue
			}
			segs = append(segs, storedSegment{Name: "/" + container + "/" + r.Name, Hash: r.ETag, Bytes: r.Size})
			info.Size += r.Size
		}
		if len(rows) < opts.Limit {
			break
		}
		opts.Marker = rows[len(rows)-1].Name
		if len(segs) > 10*MaxManifestSegments {
			return Info{}, nil, invalid("A dynamic large object may have at most %d segments", 10*MaxManifestSegments)
		}
	}
	info.ETag = hex.EncodeToString(sum.Sum(nil))
	return info, segs, nil
}

// openDLO streams a dynamic large object's segments (the range, when rng
// is set).
func (s *Service) openDLO(ctx context.Context, c Caller, account string, manifest Info, rng *peers.ByteRange) (Info, io.ReadCloser, error) {
	info, segs, err := s.dloSegments(ctx, c, account, manifest)
	if err != nil {
		return Info{}, nil, err
	}
	off, n := int64(0), info.Size
	if rng != nil {
		if off, n, err = rng.Span(info.Size); err != nil {
			return info, nil, peerErr(err, "range of a large object")
		}
	}
	return info, &sloReader{s: s, ctx: ctx, c: c, account: account, segs: segs, skip: off, left: n}, nil
}

// Segment is one segment of an SLO manifest as a client sends it
// (path; etag and size_bytes, when set, must match).
type Segment struct {
	Path      string  `json:"path"`
	ETag      *string `json:"etag"`
	SizeBytes *int64  `json:"size_bytes"`
}

// storedSegment is a segment as the manifest keeps it (Swift's form,
// which ?multipart-manifest=get returns).
type storedSegment struct {
	Name         string `json:"name"`
	Hash         string `json:"hash"`
	Bytes        int64  `json:"bytes"`
	ContentType  string `json:"content_type"`
	LastModified string `json:"last_modified"`
}

func splitSegment(p string) (string, string, bool) {
	c, o, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return c, o, ok && c != "" && o != ""
}

// PutManifest stores an SLO manifest (Swift's PUT
// ?multipart-manifest=put): every segment must exist in the account,
// readable by the caller, and match the etag and size given; spec.ETag,
// when set, must be the SLO's ETag.
func (s *Service) PutManifest(ctx context.Context, c Caller, account, container, name string, body io.Reader, spec PutSpec) (Info, error) {
	ct, objects, err := s.putTarget(ctx, c, account, container, name, spec)
	if err != nil {
		return Info{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(body, MaxManifestSize+1))
	if err != nil {
		return Info{}, fmt.Errorf("reading the manifest: %w (%w)", ErrIncomplete, err)
	}
	if len(raw) > MaxManifestSize {
		return Info{}, &Error{Message: fmt.Sprintf("Manifest File > %d bytes", MaxManifestSize), Err: ErrTooLarge}
	}
	var segs []Segment
	if err := json.Unmarshal(raw, &segs); err != nil || len(segs) == 0 {
		return Info{}, invalid("Manifest must be valid JSON.")
	}
	if len(segs) > MaxManifestSegments {
		return Info{}, invalid("Too many segments; at most %d allowed", MaxManifestSegments)
	}
	stored := make([]storedSegment, len(segs))
	sum := md5.New()
	var total int64
	var problems []string
	for i, sg := range segs {
		sc, so, ok := splitSegment(sg.Path)
		if !ok {
			problems = append(problems, fmt.Sprintf("Index %d: path %q is not /container/object", i, sg.Path))
			continue
		}
		info, err := s.HeadObject(ctx, c, account, sc, so)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrForbidden), errors.Is(err, ErrUnauthorized):
			problems = append(problems, fmt.Sprintf("%s: 404 Not Found", sg.Path))
			continue
		case err != nil:
			return Info{}, err
		case info.SLO:
			problems = append(problems, fmt.Sprintf("%s: a large object cannot be a segment here", sg.Path))
			continue
		case sg.ETag != nil && *sg.ETag != "" && strings.Trim(*sg.ETag, `"`) != info.ETag:
			problems = append(problems, fmt.Sprintf("%s: Etag Mismatch", sg.Path))
			continue
		case sg.SizeBytes != nil && *sg.SizeBytes != info.Size:
			problems = append(problems, fmt.Sprintf("%s: Size Mismatch", sg.Path))
			continue
		}
		stored[i] = storedSegment{Name: "/" + sc + "/" + so, Hash: info.ETag, Bytes: info.Size, ContentType: info.ContentType,
			LastModified: info.LastModified.UTC().Format("2006-01-02T15:04:05.000000")}
		sum.Write([]byte(info.ETag))
		total += info.Size
	}
	if len(problems) > 0 {
		return Info{}, invalid("%s", strings.Join(problems, "\n"))
	}
	etag := hex.EncodeToString(sum.Sum(nil))
	if want := strings.Trim(spec.ETag, `"`); want != "" && want != etag {
		return Info{}, &Error{Message: "Unprocessable Entity", Err: ErrETagMismatch}
	}
	manifest, err := json.Marshal(stored)
	if err != nil {
		return Info{}, err
	}
	spec.ETag, spec.Size = "", int64(len(manifest))
	spec.ContentType = sloType(spec.ContentType, total, etag)
	if err := s.archive(ctx, c, ct, objects, name); err != nil {
		return Info{}, err
	}
	return s.putObject(ctx, ct, objects, name, strings.NewReader(string(manifest)), spec)
}

// manifest reads a stored manifest.
func (s *Service) manifest(ctx context.Context, objects peers.Objects, ct Container, name string) (Info, []storedSegment, error) {
	pinfo, rc, err := objects.GetObject(ctx, ct.PeerContainer, name, nil)
	if err != nil {
		return Info{}, nil, peerErr(err, "reading "+ct.Name+"/"+name)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, MaxManifestSize+1))
	if err != nil {
		return Info{}, nil, fmt.Errorf("reading the manifest of %s/%s: %w", ct.Name, name, err)
	}
	var segs []storedSegment
	if err := json.Unmarshal(raw, &segs); err != nil {
		return Info{}, nil, fmt.Errorf("the manifest of %s/%s: %w", ct.Name, name, err)
	}
	return view(pinfo), segs, nil
}

// GetManifest returns an SLO's manifest as stored (Swift's GET
// ?multipart-manifest=get); another object's bytes as they are.
func (s *Service) GetManifest(ctx context.Context, c Caller, account, container, name string) (Info, io.ReadCloser, error) {
	ct, objects, err := s.readTarget(ctx, c, account, container, name)
	if err != nil {
		return Info{}, nil, err
	}
	pinfo, rc, err := objects.GetObject(ctx, ct.PeerContainer, name, nil)
	if err != nil {
		return Info{}, nil, peerErr(err, "reading "+container+"/"+name)
	}
	// The manifest's own bytes: its stored size and MD5, the mark cut
	// from its type.
	info := view(pinfo)
	info.Size, info.ETag = pinfo.Size, pinfo.ETag
	if info.SLO {
		info.ContentType = "application/json; charset=utf-8"
	}
	return info, rc, nil
}

// openSLO streams an SLO's bytes (the range, when rng is set).
func (s *Service) openSLO(ctx context.Context, c Caller, objects peers.Objects, ct Container, name string, rng *peers.ByteRange) (Info, io.ReadCloser, error) {
	info, segs, err := s.manifest(ctx, objects, ct, name)
	if err != nil {
		return Info{}, nil, err
	}
	off, n := int64(0), info.Size
	if rng != nil {
		if off, n, err = rng.Span(info.Size); err != nil {
			return info, nil, peerErr(err, "range of "+ct.Name+"/"+name)
		}
	}
	return info, &sloReader{s: s, ctx: ctx, c: c, account: ct.Project, segs: segs, skip: off, left: n}, nil
}

// sloReader reads an SLO's segments in order, skip bytes in, left bytes
// long, opening each segment as it gets there.
type sloReader struct {
	s          *Service
	ctx        context.Context
	c          Caller
	account    string
	segs       []storedSegment
	skip, left int64
	cur        io.ReadCloser
}

func (r *sloReader) Read(p []byte) (int, error) {
	for r.left > 0 {
		if r.cur == nil {
			if err := r.next(); err != nil {
				return 0, err
			}
			continue
		}
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
		k, err := r.cur.Read(p)
		r.left -= int64(k)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			err = nil
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
	return 0, io.EOF
}

// next opens the segment holding the next byte wanted.
func (r *sloReader) next() error {
	for len(r.segs) > 0 && r.skip >= r.segs[0].Bytes {
		r.skip -= r.segs[0].Bytes
		r.segs = r.segs[1:]
	}
	if len(r.segs) == 0 {
		return fmt.Errorf("large object: the segments end %d bytes short", r.left)
	}
	sg := r.segs[0]
	r.segs = r.segs[1:]
	sc, so, _ := splitSegment(sg.Name)
	var rng *peers.ByteRange
	if r.skip > 0 || r.left < sg.Bytes {
		rng = &peers.ByteRange{First: r.skip, Last: min(sg.Bytes-1, r.skip+r.left-1)}
	}
	info, rc, err := r.s.GetObject(r.ctx, r.c, r.account, sc, so, rng)
	if err != nil {
		return fmt.Errorf("large object segment %s: %w", sg.Name, err)
	}
	if info.ETag != sg.Hash || info.Size != sg.Bytes {
		rc.Close()
		return fmt.Errorf("large object segment %s changed since the manifest was made", sg.Name)
	}
	r.skip, r.cur = 0, rc
	return nil
}

func (r *sloReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// DeleteLarge deletes an SLO's segments, then its manifest (Swift's
// DELETE ?multipart-manifest=delete): the counts of what was deleted and
// not found. Another object is deleted as it is.
func (s *Service) DeleteLarge(ctx context.Context, c Caller, account, container, name string) (deleted, notFound int, err error) {
	ct, objects, err := s.target(ctx, c, account, container, OpWrite)
	if err != nil {
		return 0, 0, err
	}
	info, err := s.headObject(ctx, objects, ct, name)
	if err != nil {
		return 0, 0, err
	}
	if info.SLO {
		_, segs, err := s.manifest(ctx, objects, ct, name)
		if err != nil {
			return 0, 0, err
		}
		for _, sg := range segs {
			sc, so, _ := splitSegment(sg.Name)
			switch err := s.DeleteObject(ctx, c, account, sc, so); {
			case err == nil:
				deleted++
			case errors.Is(err, ErrNotFound):
				notFound++
			default:
				return deleted, notFound, err
			}
		}
	}
	if err := s.DeleteObject(ctx, c, account, container, name); err != nil {
		return deleted, notFound, err
	}
	return deleted + 1, notFound, nil
}
