// Package templates owns Eve templates (parse, validate, intrinsic
// functions, the resource DAG), the Focus catalog (immutable template
// versions, binding documents, relationships) and the deployment engine that
// plans, applies, rolls back and resumes deployments across peers, writing
// its state to the registry Store after every step.
package templates
