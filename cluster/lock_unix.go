//go:build unix

package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockDataDir takes an exclusive flock on the data dir so a second broker on
// another port cannot load and overwrite the same state. The kernel drops the
// lock when the process dies, so a SIGKILLed serve never leaves it stuck.
func lockDataDir(dir string) (unlock func(), err error) {
	p := lockPath(dir)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: cannot create %s: %v (pick a writable directory with --data-dir, or use --ephemeral)", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(p)
		f.Close()
		who := ""
		if pid := strings.TrimSpace(string(owner)); pid != "" {
			who = " (pid " + pid + ")"
		}
		return nil, fmt.Errorf("--data-dir %s is in use by another embedded broker%s: stop it, or use another --data-dir or --ephemeral", dir, who)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
