// Package peertest is the conformance suite every peers.Cloud passes, like
// Vault's physical.ExerciseBackend: the local cloud runs it over its fake
// driver in unit tests, and the OpenStack peer runs it against a real
// OpenStack (Nova's fake virt driver, Cinder's fake volume driver).
//
// Because the same assertions run against real OpenStack, the suite holds
// only what real OpenStack does too:
//
//   - Transitions are asynchronous. The suite polls Get* under a context
//     deadline (Fixture.PollTimeout) with a growing interval; a fixed sleep is
//     never what decides whether a test passes.
//   - Where OpenStack services disagree on the status code of a refusal (Nova
//     answers 400 for an unknown flavor on boot, Cinder 400 for deleting an
//     in-use volume), the suite accepts the sentinels a faithful translation
//     of either code gives, and says so next to the assertion.
//   - A failed or interrupted image upload leaves the image killed; real
//     Glance (since Rocky) resets it to queued instead. Both are accepted;
//     active never is.
//   - Every name carries a random run ID and every resource a unique
//     metadata pair, so several runs can share one cloud and a list filtered
//     by that metadata sees only this run's resources.
//
// Exercise runs the subtests in parallel inside one group, so it returns
// only after every subtest and its cleanups have finished: a caller can close
// the cloud right after it.
package peertest
