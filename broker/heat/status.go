package heat

import (
	"strings"

	"github.com/cloudmux/cloudmux/templates/deploy"
)

// Heat's actions and states.
const (
	actCreate   = "CREATE"
	actUpdate   = "UPDATE"
	actDelete   = "DELETE"
	actRollback = "ROLLBACK"
	inProgress  = "IN_PROGRESS"
	complete    = "COMPLETE"
	failed      = "FAILED"
)

// attemptAction is Heat's action for an apply attempt: a deployment's
// first attempt creates it, every later one (this API's updates) updates.
func attemptAction(attempt int) string {
	if attempt <= 1 {
		return actCreate
	}
	return actUpdate
}

// stackStatus reads Heat's action and state from a deployment.
func stackStatus(d *deploy.Deployment) (action, state string) {
	switch {
	case d.Goal == "delete":
		switch d.Status {
		case deploy.StatusDeleted:
			return actDelete, complete
		case deploy.StatusFailed:
			return actDelete, failed
		}
		return actDelete, inProgress
	case d.Status == deploy.StatusRollingBack:
		return actRollback, inProgress
	case d.Status == deploy.StatusFailed && strings.HasPrefix(d.Error, "rolled back: "):
		return actRollback, complete
	case d.Status == deploy.StatusFailed && strings.Contains(d.Error, "rollback incomplete"):
		return actRollback, failed
	}
	action = attemptAction(d.Attempt)
	switch d.Status {
	case deploy.StatusComplete:
		return action, complete
	case deploy.StatusFailed:
		return action, failed
	}
	return action, inProgress
}

// statusReason is Heat's stack_status_reason.
func statusReason(d *deploy.Deployment, action, state string) string {
	if d.Error != "" {
		return d.Error
	}
	switch state {
	case complete:
		return "Stack " + action + " completed successfully"
	case inProgress:
		return "Stack " + action + " started"
	}
	return ""
}

// eventStatus maps an engine event to Heat's resource_status (ACTION_STATE);
// ok is false for events Heat has no counterpart of (a postponed resume,
// an output that could not be read).
func eventStatus(ev deploy.Event) (string, bool) {
	state := ev.Status
	switch state {
	case inProgress, complete, failed: // the engine's COMPLETE and FAILED are Heat's words
	case string(deploy.StatusDeleted):
		state = complete
	default:
		return "", false
	}
	if ev.Resource != "" {
		var action string
		switch ev.Action {
		case "create", "adopt":
			action = actCreate
		case "update", "replace":
			action = actUpdate
		case "delete":
			action = actDelete
		default:
			return "", false
		}
		return action + "_" + state, true
	}
	switch ev.Action {
	case "apply", "complete", "failed", "plan":
		return attemptAction(ev.Attempt) + "_" + state, true
	case "rollback":
		return actRollback + "_" + state, true
	case "delete", "deleted":
		return actDelete + "_" + state, true
	}
	return "", false
}
