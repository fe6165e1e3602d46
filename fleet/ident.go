package fleet

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// Self is this process's identity in the fleet under instance.
func Self(instance, version string) Identity {
	host, _ := os.Hostname()
	return Identity{Instance: instance, Host: host, PID: os.Getpid(), PIDSpace: pidSpace(), Started: processStart, Version: version}
}

// processStart is when this process started, to the millisecond the
// snapshot's JSON keeps: with host and pid it tells a restarted process
// from the one before it.
var processStart = time.Now().UTC().Truncate(time.Millisecond)

// pidSpace names this boot and pid namespace ("<boot id>/<pid ns>"):
// processes that share it see the same pids. Empty where /proc cannot say.
func pidSpace() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// localLiveness says whether other's process runs, when this process can
// tell (same host, boot and pid namespace): known is false otherwise.
func localLiveness(self, other Identity) (alive, known bool) {
	if self.PIDSpace == "" || other.PIDSpace != self.PIDSpace || other.Host != self.Host {
		return false, false
	}
	if other.PID == self.PID {
		return false, true // our own pid: the other process is gone and the pid reused
	}
	if !pidAlive(other.PID) {
		return false, true
	}
	// The pid runs, but after a crash it may be another program's by now:
	// the kernel's start time of that pid must be the snapshot's.
	if started, ok := pidStarted(other.PID); ok && !other.Started.IsZero() {
		d := started.Sub(other.Started)
		return d > -5*time.Second && d < 5*time.Second, true
	}
	return true, true
}

// pidStarted is when pid started, from /proc/<pid>/stat (field 22, clock
// ticks after boot, USER_HZ = 100 on every Linux inferops runs on) and the
// boot time in /proc/stat.
func pidStarted(pid int) (time.Time, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22 is the 20th after the name
	if err != nil {
		return time.Time{}, false
	}
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(all), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond), true
		}
	}
	return time.Time{}, false
}
