// Package faults is the boundary rule for what an error may tell a tenant.
// The OpenStack-shaped front ends (Nova, Glance, Neutron, Cinder through
// osapi.Tell; Keystone; /v1) answer an error through it, so one rule
// decides for all of them (EC2's protocol.go keeps its own codes and
// messages, and logs its causes through Log):
//
// A tenant reads an error's text only when the broker wrote all of it: the
// error's chain is made of the packages' user-facing error types (Authored),
// the sentinels they declared public (Register), and fmt.Errorf/errors.Join
// wrappers around those. Anything else in the chain (a peer driver's error
// with its URLs and Go error chain, a Store error naming keys, a
// gophercloud or net error) makes the answer the generic text of its
// status instead; the whole chain goes to the broker's log under the
// request ID. Registered sentinels' own texts ("image: invalid request",
// "compute: ... peers: ...") are internal names, not messages: they are cut
// from what the tenant reads.
//
// The walk sees wrapped errors, not text formatted in: a service that
// writes a peer's error into its own message with %v makes the peer's
// text the broker's. Wrap causes with %w, or keep them for the log only
// with WithCause.
package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Authored is an error type whose message the broker wrote for the user
// (Nova's, Neutron's, EC2's wording): UserMessage is what to show.
type Authored interface {
	error
	UserMessage() string
}

var (
	mu         sync.RWMutex
	sentinels  = map[error]*string{} // the text each is replaced by; nil: cut
	byLength   []error               // sentinels, longest text first, for cutting
	wrapTypes  = map[reflect.Type]bool{}
	errLeaf    = errors.New("leaf")
	errLeafTwo = errors.New("leaf two")
)

func init() {
	// fmt.Errorf's and errors.Join's wrappers: the broker's own
	// composition, whose text is the format it wrote around its parts.
	wrapTypes[reflect.TypeOf(fmt.Errorf("x: %w", errLeaf))] = true
	wrapTypes[reflect.TypeOf(fmt.Errorf("x: %w %w", errLeaf, errLeafTwo))] = true
	wrapTypes[reflect.TypeOf(errors.Join(errLeaf, errLeafTwo))] = true
	// A record that failed validation: the broker's words about the
	// user's input (with its FieldErrors), never a backend's.
	Register(registry.ErrInvalid)
}

// Register declares sentinels public: an error made of them (and of
// Authored errors) says only what the broker wrote. Register only
// sentinels no foreign error wraps: never the peers or Store sentinels,
// which drivers and backends wrap around their own text. It returns true
// so packages can register in a var declaration.
func Register(errs ...error) bool {
	return register(nil, errs)
}

// RegisterWords is Register for sentinels whose text, without prefix,
// is words a user reads ("identity: could not find" reads "could not
// find"): they are kept, only the prefix is cut.
func RegisterWords(prefix string, errs ...error) bool {
	return register(&prefix, errs)
}

func register(prefix *string, errs []error) bool {
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		if _, ok := sentinels[e]; !ok {
			byLength = append(byLength, e)
		}
		var repl *string
		if prefix != nil {
			r := strings.TrimPrefix(e.Error(), *prefix)
			repl = &r
		}
		sentinels[e] = repl
	}
	sort.SliceStable(byLength, func(i, j int) bool { return len(byLength[i].Error()) > len(byLength[j].Error()) })
	return true
}

// Message is what a tenant may read of err, answered with status code:
// the broker's own words, or the generic text of the status. ok says
// whether the broker's own words were used. A 500 never shows its error.
func Message(err error, code int) (msg string, ok bool) {
	msg, ok = message(err, code)
	if !ok && code == http.StatusServiceUnavailable && errors.Is(err, registry.ErrUnavailable) && !errors.Is(err, peers.ErrUnavailable) {
		// Not a cloud: the broker's own state (Consul) during an election
		// or an outage. Its address stays out.
		return storeUnavailable, false
	}
	return msg, ok
}

func message(err error, code int) (msg string, ok bool) {
	if err == nil || code == http.StatusInternalServerError {
		return Generic(code), false
	}
	mu.RLock()
	defer mu.RUnlock()
	found := map[error]bool{}
	if !authored(err, found) {
		return Generic(code), false
	}
	if a, isA := err.(Authored); isA {
		msg = a.UserMessage()
	} else {
		msg = err.Error()
	}
	msg = strings.ReplaceAll(cut(msg, found), "\n", "; ")
	if strings.TrimSpace(msg) == "" {
		return Generic(code), false
	}
	return msg, true
}

// authored walks err's chain: true when every part is the broker's own.
// It records the registered sentinels met, whose text Message cuts, and
// the Authored errors whose text is not their UserMessage.
func authored(err error, found map[error]bool) bool {
	if err == nil {
		return true
	}
	if sentinel(err) {
		found[err] = true
		return true
	}
	if a, ok := err.(Authored); ok {
		if a.Error() != a.UserMessage() && reflect.TypeOf(err).Comparable() {
			found[err] = true // Message reads its UserMessage in the text
		}
		return true
	}
	if !wrapTypes[reflect.TypeOf(err)] && !isPeer(err) {
		return false
	}
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		return authored(x.Unwrap(), found)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if !authored(e, found) {
				return false
			}
		}
		return true
	}
	return false
}

// sentinel reports whether err is a registered sentinel; an error of a
// type that cannot be a map key is not.
func sentinel(err error) bool {
	if !reflect.TypeOf(err).Comparable() {
		return false
	}
	_, ok := sentinels[err]
	return ok
}

// Foreign reports whether err's chain, Authored errors' causes included,
// holds anything the broker did not write: then the log must have it.
func Foreign(err error) bool {
	mu.RLock()
	defer mu.RUnlock()
	return foreign(err)
}

func foreign(err error) bool {
	if err == nil || sentinel(err) {
		return false
	}
	if _, ok := err.(*causeError); ok {
		return true // its cause is for the log
	}
	_, isA := err.(Authored)
	if !isA && !wrapTypes[reflect.TypeOf(err)] && !isPeer(err) {
		return true
	}
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		return foreign(x.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if foreign(e) {
				return true
			}
		}
	}
	return false
}

// peerError names the peer an error is about, for the log only: its text
// is its cause's, so a tenant never reads the peer's ID.
type peerError struct {
	peer string
	err  error
}

func (e *peerError) Error() string { return e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }

// causeError is an error the broker wrote with the cause it replaces
// (a peer's refusal, a Store error): its text and errors.Is are err's
// alone; the cause is for the log.
type causeError struct {
	err, cause error
}

func (e *causeError) Error() string { return e.err.Error() }
func (e *causeError) Unwrap() error { return e.err }

// WithCause returns err, told to the tenant as it is, carrying cause for
// the log (Log writes it as the "cause" field).
func WithCause(err, cause error) error {
	if cause == nil {
		return err
	}
	return &causeError{err: err, cause: cause}
}

func isPeer(err error) bool {
	switch err.(type) {
	case *peerError, *causeError:
		return true
	}
	return false
}

// Reason is what a tenant may read of why a peer refused err: the kind of
// refusal, never the peer's own text.
func Reason(err error) string {
	switch {
	case errors.Is(err, peers.ErrCapacity):
		return "not enough capacity or quota"
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "not reachable"
	case errors.Is(err, peers.ErrNotSupported):
		return "not supported there"
	case errors.Is(err, peers.ErrInvalid):
		return "refused the request"
	case errors.Is(err, peers.ErrConflict):
		return "in a conflicting state"
	case errors.Is(err, peers.ErrNotFound):
		return "not found there"
	}
	return "failed"
}

// AtPeer marks err as being about peer (its ID or name), which Log
// writes as the "peer" field; what a tenant reads does not change.
func AtPeer(peer string, err error) error {
	if err == nil {
		return nil
	}
	return &peerError{peer: peer, err: err}
}

// PeerOf returns the peer an error was marked with, by AtPeer here or by
// a driver (peers.AtPeer), or "".
func PeerOf(err error) string {
	var pe *peerError
	if errors.As(err, &pe) {
		return pe.peer
	}
	var dpe *peers.PeerError
	if errors.As(err, &dpe) {
		return dpe.Peer
	}
	return ""
}

// cut puts the Authored errors' UserMessage in place of their text and
// removes the texts of the sentinels met from msg, with the ": " that
// joined them to the broker's words.
func cut(msg string, found map[error]bool) string {
	for e := range found {
		if a, ok := e.(Authored); ok {
			msg = strings.ReplaceAll(msg, a.Error(), a.UserMessage())
		}
	}
	for _, s := range byLength {
		if !found[s] {
			continue
		}
		t := s.Error()
		if repl := sentinels[s]; repl != nil {
			msg = strings.ReplaceAll(msg, t, *repl)
			continue
		}
		msg = strings.ReplaceAll(msg, ": "+t, "")
		msg = strings.ReplaceAll(msg, t+": ", "")
		msg = strings.ReplaceAll(msg, t, "")
	}
	return strings.TrimSpace(msg)
}

// storeUnavailable is the 503 text when the broker's own Store failed.
const storeUnavailable = "Service Unavailable: the broker's state store is not reachable (for example during a Consul leader election); retry later"

// generic are the statuses' texts: webob's (what OpenStack services answer)
// where it has one, and for 503 what a tenant can do about it.
var generic = map[int]string{
	http.StatusBadRequest:            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
	http.StatusUnauthorized:          "The request you have made requires authentication.",
	http.StatusForbidden:             "Access was denied to this resource.",
	http.StatusNotFound:              "The resource could not be found.",
	http.StatusMethodNotAllowed:      "The method is not allowed for this resource.",
	http.StatusConflict:              "There was a conflict when trying to complete your request.",
	http.StatusRequestEntityTooLarge: "The request is larger than the server is willing or able to process, or over a quota.",
	http.StatusNotImplemented:        "The server does not support the action required to fulfill the request.",
	http.StatusServiceUnavailable:    "Service Unavailable: a cloud this request needs is not reachable; retry later",
	http.StatusGatewayTimeout:        "Service Unavailable: a cloud this request needs did not answer in time; retry later",
}

// internalNames are sentinels no message may show by name, though their
// errors are not the broker's words: Detail cuts them.
var internalNames = []error{
	peers.ErrNotFound, peers.ErrConflict, peers.ErrCapacity, peers.ErrUnavailable, peers.ErrInvalid,
	peers.ErrNotSupported, peers.ErrUnauthorized,
	registry.ErrNotFound, registry.ErrConflict, registry.ErrInvalidKey, registry.ErrValueTooLarge,
	registry.ErrLockHeld, registry.ErrLeaseLost, registry.ErrUnavailable, registry.ErrInvalid, registry.ErrDuplicateName,
}

// Detail is err's whole text without the sentinels' package names: what a
// cloud admin reads where an admin's tool shows the cause (the /v1 peers
// API's "peer \"eu\" already exists"), and a peer's stated reason for
// refusing the request's own content (Nova's "Flavor's disk is too small").
// Never a peer's unavailability or a Store failure for a tenant.
func Detail(err error) string {
	mu.RLock()
	defer mu.RUnlock()
	all := map[error]bool{}
	for _, s := range byLength {
		all[s] = true
	}
	msg := err.Error()
	for _, s := range internalNames {
		t := s.Error()
		_, words, _ := strings.Cut(t, ": ") // "registry: key not found" reads "key not found"
		msg = strings.ReplaceAll(msg, t, words)
	}
	return strings.ReplaceAll(cut(msg, all), "\n", "; ")
}

// Generic is the text a tenant reads for a status when the error's own
// text is not the broker's.
func Generic(code int) string {
	if g, ok := generic[code]; ok {
		return g
	}
	if code >= 500 {
		return "The server has either erred or is incapable of performing the requested operation."
	}
	if t := http.StatusText(code); t != "" {
		return t + "."
	}
	return "The request failed."
}

// Internal is the text of a 500: the request ID to quote, nothing else.
func Internal(requestID string) string {
	return "internal error; see the broker log for request " + requestID
}

// Log writes what a tenant was not told: the whole chain, under the
// request ID, with the caller's project (fields). 5xx answers are errors
// or warnings; a 4xx whose text was replaced is logged at info, so a
// support engineer holding the request ID finds its cause.
func Log(log logrus.FieldLogger, requestID string, code int, err error, fields logrus.Fields) {
	if log == nil || err == nil {
		return
	}
	entry := log.WithError(err).WithFields(fields).WithFields(logrus.Fields{"request_id": requestID, "status": code})
	if p := PeerOf(err); p != "" {
		entry = entry.WithField("peer", p)
	}
	var ce *causeError
	if errors.As(err, &ce) {
		entry = entry.WithField("cause", ce.cause.Error())
	}
	switch {
	case code == http.StatusInternalServerError:
		entry.Error("internal error")
	case code >= 500:
		entry.Warn("request failed")
	default:
		entry.Info("request refused")
	}
}
