package identity

// RevocationStaleBound is how long the revocation watch may lag before
// Validate stops trusting its cache: the bound tests hold propagation to.
const RevocationStaleBound = watchStaleAfter
