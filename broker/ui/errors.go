package ui

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// statusOf maps a service error to the page's status, as the API front
// ends map them to theirs.
func statusOf(err error) int {
	var fe *registry.FieldError
	switch {
	case errors.Is(err, peers.ErrNotFound), errors.Is(err, image.ErrNotFound), errors.Is(err, deploy.ErrNotFound),
		errors.Is(err, registry.ErrNotFound), errors.Is(err, policy.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, compute.ErrForbidden), errors.Is(err, image.ErrForbidden), errors.Is(err, network.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, peers.ErrInvalid), errors.As(err, &fe), errors.Is(err, policy.ErrInvalid), errors.Is(err, policy.ErrCompile),
		errors.Is(err, policy.ErrTestsFailed):
		return http.StatusBadRequest
	case errors.Is(err, peers.ErrConflict), errors.Is(err, peers.ErrCapacity), errors.Is(err, registry.ErrConflict),
		errors.Is(err, policy.ErrNoRollback):
		return http.StatusConflict
	case errors.Is(err, peers.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail shows err as the API front ends would tell it: the broker's own
// words, or the status's generic text with the cause in the log only.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	msg, _ := faults.Message(err, code)
	fields := logrus.Fields{"ui": r.URL.Path}
	if c := callerOf(r); c != nil {
		fields["project"], fields["user"] = c.token.ProjectID, c.token.UserName
	}
	reqID := middleware.GetReqID(r.Context())
	faults.Log(u.Log, reqID, code, err, fields)
	if code == http.StatusInternalServerError {
		msg = faults.Internal(reqID)
	}
	u.errorPage(w, r, code, msg)
}

// requireMember refuses a change to a caller without the member role on
// its project (readers look only), as the API front ends do.
func (u *UI) requireMember(w http.ResponseWriter, r *http.Request) bool {
	if !callerOf(r).token.HasRole(identity.RoleMember) {
		u.errorPage(w, r, http.StatusForbidden, "This needs the member role on the project.")
		return false
	}
	return true
}

// tellable is what a user may read of a refusal (faults' rule).
func tellable(err error, code int) string {
	msg, _ := faults.Message(err, code)
	return msg
}
