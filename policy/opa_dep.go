package policy

import _ "github.com/open-policy-agent/opa/v1/rego"
