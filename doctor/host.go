package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SysctlFile is where the recommended kernel settings go.
const SysctlFile = "/etc/sysctl.d/99-inferops.conf"

// Sysctl is one kernel setting from the seed with the bound it must meet.
type Sysctl struct {
	Key  string // dotted name, e.g. net.core.somaxconn
	Op   string // ">=", "<=" or "="
	Want int64
	// Fail: a miss is FAIL (connections dropped, EMFILE) rather than WARN
	// (throughput or latency tuning).
	Fail bool
	Why  string
}

// Sysctls are the seed's RHEL 8 kernel settings (section 2.2), in the order
// of its sysctl.conf. `--print sysctl` renders the same table.
var Sysctls = []Sysctl{
	{"net.core.somaxconn", ">=", 1024, true,
		"the accept queue of Kafka's and TF Serving's listeners; when it overflows under a connection burst, new producer/consumer connections are dropped and retried"},
	{"net.ipv4.tcp_max_syn_backlog", ">=", 4096, true,
		"half-open connections queued during a reconnect storm (a rebalance or broker restart reconnects every client at once); overflow drops SYNs and adds 1 s+ retries"},
	{"net.ipv4.tcp_tw_reuse", "=", 1, false,
		"workers and load generators open many short outbound connections; reusing TIME_WAIT sockets avoids running out of ephemeral ports (2 = loopback only)"},
	{"fs.file-max", ">=", 1000000, true,
		"a broker holds a file per log segment plus a socket per client; hitting the system-wide limit fails with 'too many open files'"},
	{"vm.swappiness", "<=", 1, false,
		"Kafka relies on the page cache; swapping the JVM heap or the model server out causes multi-second pauses and consumer-group timeouts"},
	{"vm.dirty_ratio", "<=", 15, false,
		"caps dirty page cache before writers block; a high value lets Kafka's flushes stall producers for seconds at once"},
	{"vm.dirty_background_ratio", "<=", 5, false,
		"starts background writeback early so the page cache is flushed smoothly instead of in bursts that spike produce latency"},
}

func (s Sysctl) path(root string) string {
	return filepath.Join(root, "proc", "sys", filepath.FromSlash(strings.ReplaceAll(s.Key, ".", "/")))
}

func (s Sysctl) wantText() string {
	if s.Op == "=" {
		return strconv.FormatInt(s.Want, 10)
	}
	return s.Op + " " + strconv.FormatInt(s.Want, 10)
}

func (s Sysctl) ok(v int64) bool {
	switch s.Op {
	case ">=":
		return v >= s.Want
	case "<=":
		return v <= s.Want
	}
	return v == s.Want
}

// Fix is the exact change for this setting: persist it and apply it.
func (s Sysctl) Fix() string {
	return fmt.Sprintf("echo '%s = %d' | sudo tee -a %s && sudo sysctl --system", s.Key, s.Want, SysctlFile)
}

// NofileWant is the open-files limit the pipeline's processes need: one
// descriptor per partition segment and per client socket.
const (
	NofileWant = 65536
	nofileMin  = 4096
)

// CheckHost runs every host check against the filesystem under root ("/"
// for this machine; a mounted image or a test fixture otherwise).
func CheckHost(root string) []Check {
	if root == "" {
		root = "/"
	}
	var out []Check
	out = append(out, checkOS(root))
	for _, s := range Sysctls {
		out = append(out, checkSysctl(root, s))
	}
	out = append(out, checkNofile(root))
	out = append(out, checkNetwork(root))
	rel, _ := ReadOSRelease(root)
	out = append(out, checkClock(root, rel))
	return out
}

func hostCheck(id, name string) Check {
	return Check{Section: SectionHost, ID: id, Name: name}
}

// OSRelease is what we use from /etc/os-release.
type OSRelease struct {
	ID, IDLike, VersionID, PrettyName string
}

// ReadOSRelease parses <root>/etc/os-release (falling back to
// usr/lib/os-release, as systemd does).
func ReadOSRelease(root string) (OSRelease, error) {
	var f *os.File
	var err error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if f, err = os.Open(filepath.Join(root, p)); err == nil {
			break
		}
	}
	if err != nil {
		return OSRelease{}, err
	}
	defer f.Close()
	return parseOSRelease(f)
}

// parseOSRelease reads os-release's KEY=value lines (quotes optional).
func parseOSRelease(rd io.Reader) (OSRelease, error) {
	var r OSRelease
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			r.ID = v
		case "ID_LIKE":
			r.IDLike = v
		case "VERSION_ID":
			r.VersionID = v
		case "PRETTY_NAME":
			r.PrettyName = v
		}
	}
	return r, sc.Err()
}

// IsRHEL8 is true for RHEL 8 and its rebuilds (Rocky, Alma, CentOS, Oracle):
// same kernel, same sysctl defaults, same chrony.
func (r OSRelease) IsRHEL8() bool {
	major, _, _ := strings.Cut(r.VersionID, ".")
	if major != "8" {
		return false
	}
	return r.ID == "rhel" || strings.Contains(" "+r.IDLike+" ", " rhel ")
}

func checkOS(root string) Check {
	c := hostCheck("os", "operating system")
	c.Want = "RHEL 8"
	c.Why = "the seed's tuning targets RHEL 8; other Linux distributions get the same checks"
	r, err := ReadOSRelease(root)
	if err != nil {
		c.Status = Warn
		c.Seen = "unknown (" + shortErr(err) + ")"
		c.Fix = "no /etc/os-release under --proc-root " + root + ": point --proc-root at the host's root filesystem"
		return c
	}
	name := r.PrettyName
	if name == "" {
		name = strings.TrimSpace(r.ID + " " + r.VersionID)
	}
	c.Seen = name
	if r.IsRHEL8() {
		c.Status = Pass
		return c
	}
	c.Status = Info
	c.Seen = name + " (not RHEL 8; checked the same way)"
	return c
}

func checkSysctl(root string, s Sysctl) Check {
	c := hostCheck(s.Key, s.Key)
	c.Want = s.wantText()
	c.Why = s.Why
	c.Fix = s.Fix()
	raw, err := os.ReadFile(s.path(root))
	if err != nil {
		c.Status = Warn
		c.Seen = "unreadable (" + shortErr(err) + ")"
		c.Fix = "run doctor on the host itself (containers hide some of /proc/sys), or set it: " + s.Fix()
		return c
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		c.Status = Warn
		c.Seen = "empty"
		return c
	}
	v, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		c.Status = Warn
		c.Seen = fmt.Sprintf("%q (not a number)", fields[0])
		return c
	}
	c.Seen = strconv.FormatInt(v, 10)
	switch {
	case s.ok(v):
		c.Status = Pass
	case s.Fail:
		c.Status = Fail
	default:
		c.Status = Warn
	}
	return c
}

// checkNofile reads the open-files limit from <root>/proc/self/limits: for
// root "/" that is this process, which inherited the limit of the shell or
// unit that started it, i.e. the limit a worker started the same way gets.
func checkNofile(root string) Check {
	c := hostCheck("nofile", "open files limit (nofile)")
	c.Want = fmt.Sprintf(">= %d", NofileWant)
	c.Why = "each worker holds a socket per broker plus gRPC connections, each broker a descriptor per segment and client; below the limit they fail with EMFILE"
	c.Fix = fmt.Sprintf("systemd unit: LimitNOFILE=1048576 under [Service] (systemctl edit inferops), then systemctl restart inferops;\n" +
		"shells: echo '* - nofile 1048576' | sudo tee /etc/security/limits.d/99-inferops.conf and log in again")
	soft, hard, src, err := readNofile(root)
	if err != nil {
		c.Status = Warn
		c.Seen = "unknown (" + shortErr(err) + ")"
		return c
	}
	c.Seen = fmt.Sprintf("soft %s, hard %s (%s)", limitText(soft), limitText(hard), src)
	// Go raises its own soft limit to the hard limit at start-up, and so do
	// Kafka's scripts; the hard limit is what a process can really reach.
	eff := max(soft, hard)
	if soft == unlimited || hard == unlimited {
		eff = NofileWant
	}
	switch {
	case eff >= NofileWant:
		c.Status = Pass
	case eff >= nofileMin:
		c.Status = Warn
	default:
		c.Status = Fail
	}
	return c
}

const unlimited = -1

func limitText(v int64) string {
	if v == unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10)
}

func readNofile(root string) (soft, hard int64, src string, err error) {
	p := filepath.Join(root, "proc", "self", "limits")
	f, err := os.Open(p)
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "Max open files") {
				continue
			}
			fs := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(fs) < 2 {
				return 0, 0, "", fmt.Errorf("%s: malformed line %q", p, line)
			}
			if soft, err = parseLimit(fs[0]); err == nil {
				hard, err = parseLimit(fs[1])
			}
			if err != nil {
				return 0, 0, "", fmt.Errorf("%s: %v", p, err)
			}
			return soft, hard, "proc/self/limits", nil
		}
		if err := sc.Err(); err != nil {
			return 0, 0, "", err
		}
		return 0, 0, "", fmt.Errorf("%s: no 'Max open files' line", p)
	}
	if root != "/" {
		return 0, 0, "", err
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, "", fmt.Errorf("getrlimit(RLIMIT_NOFILE): %w", err)
	}
	return rlim(rl.Cur), rlim(rl.Max), "getrlimit", nil
}

func rlim(v uint64) int64 {
	if v == unix.RLIM_INFINITY || v > 1<<62 {
		return unlimited
	}
	return int64(v)
}

func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return unlimited, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: not a number", s)
	}
	return v, nil
}

// timeDaemons are the processes that keep the clock synchronised.
var timeDaemons = []string{"chronyd", "ntpd", "systemd-timesyncd", "ntpsec", "openntpd"}

// checkClock decides from, in order of strength: the kernel's own verdict
// (adjtimex, only when root is this machine), systemd-timesyncd's
// synchronized flag, and a time daemon running or installed under root.
func checkClock(root string, rel OSRelease) Check {
	c := hostCheck("clock", "clock synchronisation")
	c.Want = "synchronised (chronyd)"
	c.Why = "lag in seconds, Predict latency and Burrow's windows compare timestamps from different hosts; an unsynchronised clock makes them lie and can reorder Kafka's time-based retention"
	install := "sudo dnf install -y chrony"
	if rel.ID == "debian" || rel.ID == "ubuntu" || strings.Contains(" "+rel.IDLike+" ", " debian ") {
		install = "sudo apt-get install -y chrony"
	}
	c.Fix = install + " && sudo systemctl enable --now chronyd (then chronyc tracking)"
	daemon := runningDaemon(root)
	kernel := ""
	if root == "/" {
		var tx unix.Timex
		state, err := unix.Adjtimex(&tx)
		switch {
		case err != nil:
			// Some sandboxes forbid even the read-only call; fall through.
		case state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0:
			kernel = "unsynchronised"
		default:
			kernel = "synchronised"
		}
	}
	timesyncd := exists(filepath.Join(root, "run", "systemd", "timesync", "synchronized"))
	who := daemon
	if who == "" {
		who = "no time daemon running"
	}
	switch {
	case kernel == "synchronised":
		c.Status, c.Seen = Pass, "kernel clock synchronised ("+who+")"
	case timesyncd:
		c.Status, c.Seen = Pass, "systemd-timesyncd reports synchronised"
	case kernel == "unsynchronised" && daemon != "":
		c.Status, c.Seen = Warn, "kernel clock unsynchronised, "+daemon+" running (not yet synchronised?)"
		c.Fix = "check the sources: chronyc sources -v (is the NTP server reachable on UDP 123?)"
	case kernel == "unsynchronised":
		c.Status, c.Seen = Fail, "kernel clock unsynchronised, no time daemon running"
	case daemon != "":
		// A mounted image: the daemon's presence is the best evidence.
		c.Status, c.Seen = Pass, daemon+" running"
	case installed(root, "chronyd"):
		c.Status, c.Seen = Warn, "chrony installed but chronyd not running"
		c.Fix = "sudo systemctl enable --now chronyd"
	default:
		c.Status, c.Seen = Fail, "no time daemon (chronyd/ntpd/timesyncd) found"
	}
	return c
}

// runningDaemon looks through <root>/proc/*/comm for a time daemon.
func runningDaemon(root string) string {
	entries, err := os.ReadDir(filepath.Join(root, "proc"))
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, "proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		for _, d := range timeDaemons {
			if name == d {
				return name
			}
		}
	}
	return ""
}

func installed(root, bin string) bool {
	for _, dir := range []string{"usr/sbin", "usr/bin", "sbin"} {
		if exists(filepath.Join(root, dir, bin)) {
			return true
		}
	}
	return false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// shortErr drops the noisy *PathError wrapping but keeps the reason.
func shortErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// NetworkWantMbps is the seed's answer to a network bottleneck: 25 Gbps.
const NetworkWantMbps = 25000

// checkNetwork reads the link speed of the physical interfaces that are up
// (<root>/sys/class/net/*/speed, in Mb/s; virtual ones have no device link).
func checkNetwork(root string) Check {
	c := hostCheck("network", "network link speed")
	c.Want = fmt.Sprintf(">= %d Gb/s", NetworkWantMbps/1000)
	c.Why = "the seed's high load (2,000 streams of 10 KB records, replicated 3 times, plus results) saturates slower links; its fix for a network bottleneck is 25+ Gbps"
	c.Fix = "move brokers and workers to 25 Gb/s NICs (or bond links); meanwhile keep compression.type=zstd to cut the bytes on the wire"
	dir := filepath.Join(root, "sys", "class", "net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.Status, c.Seen = Info, "unknown ("+shortErr(err)+")"
		c.Fix = ""
		return c
	}
	var known, unknown []string
	best := int64(-1)
	for _, e := range entries {
		name := e.Name()
		nic := filepath.Join(dir, name)
		if !exists(filepath.Join(nic, "device")) {
			continue // lo, bridges, veths, tunnels
		}
		if st, _ := os.ReadFile(filepath.Join(nic, "operstate")); strings.TrimSpace(string(st)) != "up" {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join(nic, "speed"))
		v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil || v <= 0 {
			unknown = append(unknown, name)
			continue
		}
		known = append(known, fmt.Sprintf("%s %s", name, mbps(v)))
		best = max(best, v)
	}
	switch {
	case best >= NetworkWantMbps:
		c.Status = Pass
	case best > 0:
		c.Status = Warn
	default:
		c.Status = Info
		c.Fix = ""
	}
	parts := known
	if len(unknown) > 0 {
		parts = append(parts, strings.Join(unknown, ", ")+" speed not reported (virtual NIC?)")
	}
	if len(parts) == 0 {
		parts = []string{"no physical interface up"}
	}
	c.Seen = strings.Join(parts, "; ")
	return c
}

func mbps(v int64) string {
	if v >= 1000 && v%1000 == 0 {
		return fmt.Sprintf("%d Gb/s", v/1000)
	}
	return fmt.Sprintf("%d Mb/s", v)
}
