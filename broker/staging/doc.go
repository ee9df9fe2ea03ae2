// Package staging copies images between peers when placement puts a server
// on a peer that lacks its image: the bytes stream from the source peer to
// the target (never held whole), the copy keeps the image's ID, its size
// and checksum are verified on both sides, and the copy is recorded so the
// next boot there reuses it. Concurrent requests for one image on one peer
// share a single copy, within a broker and across brokers (a lease in the
// registry).
package staging
