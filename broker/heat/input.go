package heat

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/templates"
)

// stackRequest is the body of a create, preview or update, as
// python-heatclient and gophercloud send it.
type stackRequest struct {
	StackName string `json:"stack_name"`
	// Template is the document (heatclient sends it parsed, gophercloud
	// as a string).
	Template         json.RawMessage   `json:"template"`
	TemplateURL      string            `json:"template_url"`
	Files            map[string]string `json:"files"`
	FilesContainer   string            `json:"files_container"`
	Environment      json.RawMessage   `json:"environment"`
	EnvironmentFiles []string          `json:"environment_files"`
	Parameters       map[string]any    `json:"parameters"`
	ClearParameters  []string          `json:"clear_parameters"`
	TimeoutMins      *int              `json:"timeout_mins"`
	DisableRollback  *bool             `json:"disable_rollback"`
	Tags             any               `json:"tags"`
	AdoptStackData   any               `json:"adopt_stack_data"`
	Existing         bool              `json:"existing"`
	Converge         bool              `json:"converge"`
}

// stackName is Heat's rule for a stack's name.
var stackName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$`)

// refuseUnserved answers 400 for what the broker does not do, rather
// than dropping it.
func (q *stackRequest) refuseUnserved() error {
	switch {
	case q.TemplateURL != "":
		return badRequest("template_url is not supported: the broker fetches no URLs; send the template")
	case q.FilesContainer != "":
		return badRequest("files_container is not supported; send the files")
	case q.AdoptStackData != nil:
		return badRequest("adopt_stack_data is not supported: stacks are not adopted")
	case q.Tags != nil && q.Tags != "":
		return badRequest("tags are not supported on stacks")
	case q.Converge:
		return badRequest("converge is not supported")
	}
	if q.TimeoutMins != nil && *q.TimeoutMins < 0 {
		return badRequest("timeout_mins: want a non-negative number of minutes")
	}
	return nil
}

// source renders the request's template as the document the engine
// deploys: get_file calls replaced by the files' contents (JSON is
// YAML, so the document is JSON). ok is false when no template was given.
func (q *stackRequest) source() (string, bool, error) {
	raw := strings.TrimSpace(string(q.Template))
	if raw == "" || raw == "null" {
		return "", false, nil
	}
	var text string
	var tree any
	if raw[0] == '"' {
		if err := json.Unmarshal(q.Template, &text); err != nil {
			return "", false, badRequest("template: %v", err)
		}
		if !strings.Contains(text, "get_file") {
			return text, true, nil
		}
		t, err := templates.DecodeTree([]byte(text))
		if err != nil {
			return "", false, err
		}
		tree = t
	} else if err := json.Unmarshal(q.Template, &tree); err != nil {
		return "", false, badRequest("template: %v", err)
	}
	tree, err := inlineFiles(tree, q.Files, "template")
	if err != nil {
		return "", false, err
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return "", false, badRequest("template: %v", err)
	}
	if len(b) > templates.MaxSourceBytes {
		return "", false, badRequest("the template with its files is %d bytes, more than %d", len(b), templates.MaxSourceBytes)
	}
	return string(b), true, nil
}

// inlineFiles replaces every {get_file: NAME} with the file's content.
func inlineFiles(v any, files map[string]string, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if name, ok := x["get_file"]; ok && len(x) == 1 {
			s, _ := name.(string)
			content, found := files[s]
			if !found {
				return nil, badRequest("%s: get_file %q: no such file was sent", path, s)
			}
			return content, nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := inlineFiles(e, files, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := inlineFiles(e, files, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	return v, nil
}

// environment is the part of a Heat environment the engine serves.
type environment struct {
	Parameters        map[string]any `json:"parameters"`
	ParameterDefaults map[string]any `json:"parameter_defaults"`
}

// parameters merges the environment files (in order), the environment
// and the request's parameters into the values the engine gets, over
// base (an update's existing values). parameter_defaults apply to the
// template's parameters only, as in Heat.
func (q *stackRequest) parameters(tpl *templates.Template, base map[string]any) (map[string]any, error) {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for _, name := range q.ClearParameters {
		delete(out, name)
	}
	var envs []json.RawMessage
	for _, name := range q.EnvironmentFiles {
		content, ok := q.Files[name]
		if !ok {
			return nil, badRequest("environment_files: %q was not sent in files", name)
		}
		tree, err := templates.DecodeTree([]byte(content))
		if err != nil {
			return nil, badRequest("environment file %s: %v", name, err)
		}
		b, _ := json.Marshal(tree)
		envs = append(envs, b)
	}
	if len(q.Environment) > 0 && string(q.Environment) != "null" {
		envs = append(envs, q.Environment)
	}
	for _, raw := range envs {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, badRequest("environment: want a mapping: %v", err)
		}
		for k, v := range keys {
			switch k {
			case "parameters", "parameter_defaults":
			case "resource_registry", "event_sinks":
				if !emptyJSON(v) {
					return nil, badRequest("environment: %s is not supported", k)
				}
			case "encrypted_param_names":
			default:
				return nil, badRequest("environment: unknown section %s", k)
			}
		}
		var env environment
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, badRequest("environment: %v", err)
		}
		for name, v := range env.ParameterDefaults {
			if _, declared := tpl.Parameters[name]; declared {
				out[name] = v
			}
		}
		maps.Copy(out, env.Parameters)
	}
	maps.Copy(out, q.Parameters)
	var unknown []string
	for name := range out {
		if _, ok := tpl.Parameters[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, &heatError{code: 400, typ: "UnknownUserParameter", msg: "The Parameter (" + strings.Join(unknown, ", ") + ") was not defined in template."}
	}
	return templates.NormalizeValue(out).(map[string]any), nil
}

// emptyJSON: null, {}, [] or a mapping of empty mappings (heatclient
// sends resource_registry: {resources: {}}).
func emptyJSON(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, e := range x {
			b, _ := json.Marshal(e)
			if !emptyJSON(b) {
				return false
			}
		}
		return true
	}
	return false
}
