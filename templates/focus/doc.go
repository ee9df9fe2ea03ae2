// Package focus is the template catalog (HP Cloud OS's Focus): named Eve
// templates with immutable numbered versions, binding documents (named,
// versioned parameter sets and placement overrides bound to one template
// version), diffs between versions, and relationships: what a version
// extends or nests, and which templates, bindings and deployments use it.
//
// Every template and binding belongs to the project that pushed it, and
// names are per project: project A's "web" and project B's "web" are two
// templates, and neither project can read, list or use the other's by
// any reference (name, NAME@VERSION, content). A cloud admin may publish
// a version of their project's template (Publish): every project may then
// read, deploy and nest it, and none but the owner adds versions. A
// project naming a template gets its own of that name, else the public
// one.
//
// Everything lives in the registry Store under "focus/projects/PROJECT/"
// and "focus/public/". A version is written once with a create-only CAS
// and never changed; its content hash is indexed per project so pushing
// identical content again returns the version that already holds it.
package focus
