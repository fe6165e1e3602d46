//go:build unix

package fleet

import (
	"errors"
	"syscall"
)

// pidAlive asks the kernel (signal 0) whether pid exists; EPERM means it
// does, under another user.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
