// Package focus is the template catalog (HP Cloud OS's Focus): named Eve
// templates with immutable numbered versions, binding documents (named,
// versioned parameter sets and placement overrides bound to one template
// version), diffs between versions, and relationships: what a version
// extends or nests, and which templates, bindings and deployments use it.
//
// Everything lives in the registry Store under "focus/". A version is
// written once with a create-only CAS and never changed; its content hash
// is indexed so pushing identical content again returns the version that
// already holds it.
package focus
