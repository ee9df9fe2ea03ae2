package object

import (
	"context"
	"errors"
	"strings"
)

// Container ACLs, as Swift's keystoneauth reads X-Container-Read and
// X-Container-Write: comma-separated grants, each
//
//	<project ID>:<user ID>, <project ID>:*, *:<user ID>, *:*
//	<project name>:<user name>   (both in the default domain)
//	<role name>                  (a role the caller holds on its project)
//	.r:*, .r:<referrer>, .r:-<referrer>   (read only: anyone, token or
//	                             not, whose Referer matches; no listing)
//	.rlistings                   (read only: referrer grants list too)
//
// A read grant lets its holders read and HEAD objects and list the
// container (referrers only with .rlistings); a write grant lets them
// put, post and delete objects. Neither lets them change the container
// itself or see its ACLs; only the account's owner may set them.

// Op is what a caller wants of a container it may not own.
type Op int

// The operations a container ACL can grant.
const (
	OpRead Op = iota
	OpList
	OpWrite
)

// ErrUnauthorized: an anonymous caller (no token) that no ACL lets in:
// Swift's 401, so a client knows to authenticate.
var ErrUnauthorized = errors.New("object: authentication required")

// checkACL refuses a malformed ACL as Swift's 400 does; write ACLs take
// no referrer grants.
func checkACL(header, acl string, write bool) error {
	for _, g := range strings.Split(acl, ",") {
		g = strings.TrimSpace(g)
		switch {
		case g == "":
		case strings.HasPrefix(g, ".r:") || g == ".rlistings":
			if write {
				return invalid("Referrers not allowed in write ACL: %q", g)
			}
			if ref := strings.TrimPrefix(strings.TrimPrefix(g, ".r:"), "-"); g != ".rlistings" && ref == "" {
				return invalid("No host/domain value after referrer designation in ACL: %q", g)
			}
		case strings.HasPrefix(g, "."):
			return invalid("Unknown designator %q in ACL: %q", strings.SplitN(g, ":", 2)[0], acl)
		}
	}
	if len(acl) > 8192 {
		return invalid("%s is longer than 8192 bytes", header)
	}
	return nil
}

// ACLChange is a change to a container's ACLs: a nil field is no change,
// an empty string removes the ACL.
type ACLChange struct {
	Read, Write *string
}

func (a ACLChange) check() error {
	if a.Read != nil {
		if err := checkACL("X-Container-Read", *a.Read, false); err != nil {
			return err
		}
	}
	if a.Write != nil {
		return checkACL("X-Container-Write", *a.Write, true)
	}
	return nil
}

func (a ACLChange) apply(ct *Container) {
	if a.Read != nil {
		ct.ReadACL = strings.TrimSpace(*a.Read)
	}
	if a.Write != nil {
		ct.WriteACL = strings.TrimSpace(*a.Write)
	}
}

// grants reports whether acl lets c in; referrers count only for reads.
func grants(acl string, c Caller, op Op) bool {
	listings, refOK := false, false
	for _, g := range strings.Split(acl, ",") {
		g = strings.TrimSpace(g)
		switch {
		case g == "":
		case g == ".rlistings":
			listings = true
		case strings.HasPrefix(g, ".r:"):
			if op != OpWrite {
				applyReferrer(strings.TrimPrefix(g, ".r:"), c.Referrer, &refOK)
			}
		case c.Anonymous:
		case strings.Contains(g, ":"):
			p, u, _ := strings.Cut(g, ":")
			projectOK := p == "*" || p == c.Project || (c.DefaultDomain && p == c.ProjectName)
			userOK := u == "*" || u == c.User || (c.DefaultDomain && u == c.UserName)
			if projectOK && userOK {
				return true
			}
		default:
			for _, role := range c.Roles {
				if strings.EqualFold(role, g) {
					return true
				}
			}
		}
	}
	return refOK && (op == OpRead || listings)
}

// applyReferrer applies one .r: grant to a Referer in order, as Swift
// does: "*" or a host (".example.com" for its subdomains too) allow, a
// leading '-' denies; the last grant that matches decides.
func applyReferrer(grant, referrer string, ok *bool) {
	deny := strings.HasPrefix(grant, "-")
	grant = strings.TrimPrefix(grant, "-")
	host := referrer
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host, _, _ = strings.Cut(host, "/")
	host, _, _ = strings.Cut(host, ":")
	match := grant == "*" || host == grant || (strings.HasPrefix(grant, ".") && (strings.HasSuffix(host, grant) || host == grant[1:]))
	if match {
		*ok = !deny
	}
}

// authorize lets c do op on a container of account: the owner (and a
// cloud admin) may do anything, a member write, a reader read; anyone
// else only what the container's ACLs grant. A container that does not
// exist, or grants nothing, is ErrForbidden to a non-owner (401 to one
// without a token), so another project learns nothing from the answer.
func (s *Service) authorize(ctx context.Context, c Caller, account, container string, op Op) (Container, error) {
	if !c.Anonymous && (c.Admin || (c.Project != "" && c.Project == account)) {
		if op == OpWrite && !c.Write && !c.Admin {
			return Container{}, ErrForbidden
		}
		return s.container(ctx, account, container)
	}
	refuse := ErrForbidden
	if c.Anonymous {
		refuse = ErrUnauthorized
	}
	ct, err := s.container(ctx, account, container)
	if errors.Is(err, ErrNotFound) {
		return Container{}, refuse
	}
	if err != nil {
		return Container{}, err
	}
	acl := ct.ReadACL
	if op == OpWrite {
		acl = ct.WriteACL
	}
	if !grants(acl, c, op) {
		return Container{}, refuse
	}
	return ct, nil
}

// owns reports whether c owns account (or administers every account).
func owns(c Caller, account string) bool {
	return !c.Anonymous && (c.Admin || (c.Project != "" && c.Project == account))
}
