package osapi

import "net/http"

// Version returns the microversion the request negotiated through
// Microversion ("" when it went through none).
func Version(r *http.Request) string {
	v, _ := r.Context().Value(versionKey{}).(string)
	return v
}

// VersionIn reports whether the request negotiated a microversion from lo
// to hi, both included: for a behaviour a service had for a span of
// versions only (Nova took device tags on block devices at 2.32 and again
// from 2.42, not between).
func VersionIn(r *http.Request, lo, hi string) bool {
	v := Version(r)
	return v != "" && inRange(v, lo, hi)
}
