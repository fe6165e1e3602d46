//go:build !unix

package fleet

// pidAlive cannot ask where there is no kill(2): assume alive, so the
// instance-name check waits for silence instead (inferops targets Linux).
func pidAlive(int) bool { return true }
