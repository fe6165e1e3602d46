package doctor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline"
)

// fakeRoot writes files (path relative to root -> content) under a temp dir.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const rhel8 = `NAME="Red Hat Enterprise Linux"
VERSION="8.9 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.9"
PRETTY_NAME="Red Hat Enterprise Linux 8.9 (Ootpa)"
`

const limitsHeader = "Limit                     Soft Limit           Hard Limit           Units     \n" +
	"Max cpu time              unlimited            unlimited            seconds   \n"

func limits(soft, hard string) string {
	return limitsHeader + "Max open files            " + soft + "                " + hard + "                files     \n"
}

// tunedHost is a RHEL 8 host configured exactly as the seed says.
func tunedHost() map[string]string {
	m := map[string]string{
		"etc/os-release":   rhel8,
		"proc/self/limits": limits("1048576", "1048576"),
		"proc/812/comm":    "chronyd\n",
		"proc/1/comm":      "systemd\n",
		// A 25 Gb/s NIC, plus loopback (no device link) to be ignored.
		"sys/class/net/ens1f0/device/vendor": "0x15b3\n",
		"sys/class/net/ens1f0/operstate":     "up\n",
		"sys/class/net/ens1f0/speed":         "25000\n",
		"sys/class/net/lo/operstate":         "unknown\n",
		"sys/class/net/lo/speed":             "",
	}
	for _, s := range Sysctls {
		m["proc/sys/"+strings.ReplaceAll(s.Key, ".", "/")] = strconv.FormatInt(s.Want, 10) + "\n"
	}
	return m
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func find(t *testing.T, cs []Check, id string) Check {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", id, cs)
	return Check{}
}

// wantChecks asserts each named check's status and that its Seen and Fix
// contain the given words (nil maps ask nothing), then logs the report when
// the test has failed.
func wantChecks(t *testing.T, cs []Check, status map[string]Status, seen, fix map[string]string) {
	t.Helper()
	for id, want := range status {
		if c := find(t, cs, id); c.Status != want {
			t.Errorf("%s: %s (seen %q), want %s", id, c.Status, c.Seen, want)
		}
	}
	for id, s := range seen {
		if c := find(t, cs, id); !strings.Contains(c.Seen, s) {
			t.Errorf("%s: seen %q lacks %q", id, c.Seen, s)
		}
	}
	for id, s := range fix {
		if c := find(t, cs, id); !strings.Contains(c.Fix, s) {
			t.Errorf("%s: fix %q lacks %q", id, c.Fix, s)
		}
	}
	logReportIfFailed(t, cs)
}

// logReportIfFailed logs the checks as doctor prints them, for a failed test.
func logReportIfFailed(t *testing.T, cs []Check) {
	t.Helper()
	if t.Failed() {
		var b strings.Builder
		NewReport(cs).WriteText(&b, false)
		t.Log("\n" + b.String())
	}
}

func TestCheckHostTunedRHEL8AllPass(t *testing.T) {
	cs := CheckHost(fakeRoot(t, tunedHost()))
	if len(cs) != len(Sysctls)+4 {
		t.Fatalf("got %d checks, want %d", len(cs), len(Sysctls)+4)
	}
	for _, c := range cs {
		if c.Status != Pass {
			t.Errorf("%s: %s seen %q, want PASS", c.ID, c.Status, c.Seen)
		}
		if c.Section != SectionHost || c.Name == "" || c.Seen == "" {
			t.Errorf("%s: incomplete check %+v", c.ID, c)
		}
	}
	if got := find(t, cs, "os").Seen; !strings.Contains(got, "Red Hat Enterprise Linux 8.9") {
		t.Errorf("os seen %q", got)
	}
}

func TestCheckHostSysctls(t *testing.T) {
	tests := []struct {
		key, value string
		want       Status
	}{
		{"net.core.somaxconn", "4096", Pass},
		{"net.core.somaxconn", "1024", Pass},
		{"net.core.somaxconn", "128", Fail},
		{"net.ipv4.tcp_max_syn_backlog", "4096", Pass},
		{"net.ipv4.tcp_max_syn_backlog", "512", Fail},
		{"net.ipv4.tcp_tw_reuse", "1", Pass},
		{"net.ipv4.tcp_tw_reuse", "2", Warn},
		{"net.ipv4.tcp_tw_reuse", "0", Warn},
		{"fs.file-max", "9223372036854775807", Pass},
		{"fs.file-max", "1000000", Pass},
		{"fs.file-max", "65536", Fail},
		{"vm.swappiness", "0", Pass},
		{"vm.swappiness", "1", Pass},
		{"vm.swappiness", "60", Warn},
		{"vm.dirty_ratio", "10", Pass},
		{"vm.dirty_ratio", "20", Warn},
		{"vm.dirty_background_ratio", "5", Pass},
		{"vm.dirty_background_ratio", "10", Warn},
		{"vm.swappiness", "sixty", Warn},
		{"vm.swappiness", "", Warn},
		{"vm.swappiness", "<delete>", Warn},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			p := "proc/sys/" + strings.ReplaceAll(tc.key, ".", "/")
			c := find(t, CheckHost(fakeRoot(t, with(tunedHost(), p, tc.value))), tc.key)
			if c.Status != tc.want {
				t.Fatalf("%s=%q: %s (seen %q), want %s", tc.key, tc.value, c.Status, c.Seen, tc.want)
			}
			if c.Status != Pass {
				if !strings.Contains(c.Fix, "sysctl --system") || !strings.Contains(c.Fix, SysctlFile) || !strings.Contains(c.Fix, tc.key+" = ") {
					t.Errorf("fix %q lacks the sysctl line and sysctl --system", c.Fix)
				}
				if c.Why == "" || c.Want == "" {
					t.Errorf("missing why/want: %+v", c)
				}
			}
			if tc.value != "" && tc.value != "<delete>" && tc.value != "sixty" && c.Seen != tc.value {
				t.Errorf("seen %q, want %q", c.Seen, tc.value)
			}
		})
	}
}

func TestCheckHostNofile(t *testing.T) {
	tests := []struct {
		name, limits string
		want         Status
		seen         string
	}{
		{"high", limits("1048576", "1048576"), Pass, "soft 1048576, hard 1048576"},
		{"soft low but hard high", limits("1024", "524288"), Pass, "soft 1024"},
		{"unlimited", limits("unlimited", "unlimited"), Pass, "unlimited"},
		{"middling", limits("8192", "8192"), Warn, "8192"},
		{"default 1024", limits("1024", "4095"), Fail, "4095"},
		{"no line", limitsHeader, Warn, "no 'Max open files' line"},
		{"garbage", limitsHeader + "Max open files x y files\n", Warn, "not a number"},
		{"missing file", "<delete>", Warn, "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := find(t, CheckHost(fakeRoot(t, with(tunedHost(), "proc/self/limits", tc.limits))), "nofile")
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) {
				t.Fatalf("got %s %q, want %s containing %q", c.Status, c.Seen, tc.want, tc.seen)
			}
			if c.Status != Pass && !strings.Contains(c.Fix, "LimitNOFILE=") {
				t.Errorf("fix %q lacks LimitNOFILE", c.Fix)
			}
		})
	}
}

func TestCheckHostClock(t *testing.T) {
	noDaemon := with(tunedHost(), "proc/812/comm", "<delete>")
	tests := []struct {
		name  string
		files map[string]string
		want  Status
		seen  string
		fix   string
	}{
		{"chronyd running", tunedHost(), Pass, "chronyd running", ""},
		{"ntpd running", with(noDaemon, "proc/77/comm", "ntpd\n"), Pass, "ntpd", ""},
		{"timesyncd synchronised", with(noDaemon, "run/systemd/timesync/synchronized", ""), Pass, "timesyncd", ""},
		{"chrony installed, not running", with(noDaemon, "usr/sbin/chronyd", "ELF"), Warn, "not running", "systemctl enable --now chronyd"},
		{"nothing", noDaemon, Fail, "no time daemon", "dnf install -y chrony"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := find(t, CheckHost(fakeRoot(t, tc.files)), "clock")
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("got %s %q fix %q, want %s %q fix %q", c.Status, c.Seen, c.Fix, tc.want, tc.seen, tc.fix)
			}
		})
	}
}

func TestCheckHostNetwork(t *testing.T) {
	nic := "sys/class/net/ens1f0/"
	tests := []struct {
		name  string
		files map[string]string
		want  Status
		seen  string
	}{
		{"25 Gb/s", tunedHost(), Pass, "ens1f0 25 Gb/s"},
		{"100 Gb/s", with(tunedHost(), nic+"speed", "100000\n"), Pass, "100 Gb/s"},
		{"10 Gb/s", with(tunedHost(), nic+"speed", "10000\n"), Warn, "ens1f0 10 Gb/s"},
		{"2.5 Gb/s", with(tunedHost(), nic+"speed", "2500\n"), Warn, "2500 Mb/s"},
		{"fast NIC down, slow NIC up", with(tunedHost(), nic+"operstate", "down\n",
			"sys/class/net/eno1/device/x", "", "sys/class/net/eno1/operstate", "up\n", "sys/class/net/eno1/speed", "1000\n"), Warn, "eno1 1 Gb/s"},
		{"virtio reports -1", with(tunedHost(), nic+"speed", "-1\n"), Info, "ens1f0 speed not reported"},
		{"no physical NIC", with(tunedHost(), nic+"device/vendor", "<delete>", nic+"operstate", "<delete>", nic+"speed", "<delete>"), Info, "no physical interface up"},
		{"no sysfs", with(tunedHost(), nic+"device/vendor", "<delete>", nic+"operstate", "<delete>", nic+"speed", "<delete>",
			"sys/class/net/lo/operstate", "<delete>", "sys/class/net/lo/speed", "<delete>"), Info, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRoot(t, tc.files)
			if tc.name == "no sysfs" || tc.name == "no physical NIC" {
				os.RemoveAll(filepath.Join(root, nic))
			}
			if tc.name == "no sysfs" {
				os.RemoveAll(filepath.Join(root, "sys"))
			}
			c := find(t, CheckHost(root), "network")
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) {
				t.Fatalf("got %s %q, want %s containing %q", c.Status, c.Seen, tc.want, tc.seen)
			}
			if c.Status == Warn && !strings.Contains(c.Fix, "25 Gb/s") {
				t.Errorf("fix %q", c.Fix)
			}
		})
	}
}

func TestCheckHostOS(t *testing.T) {
	tests := []struct {
		name, release string
		want          Status
		seen          string
	}{
		{"rhel 8", rhel8, Pass, "Red Hat Enterprise Linux 8.9"},
		{"rocky 8", "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.8\"\nPRETTY_NAME=\"Rocky Linux 8.8 (Green Obsidian)\"\n", Pass, "Rocky Linux 8.8"},
		{"rhel 9", "ID=\"rhel\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n", Info, "not RHEL 8"},
		{"debian", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n", Info, "Debian GNU/Linux 12"},
		{"no pretty name", "ID=alpine\nVERSION_ID=3.19.1\n", Info, "alpine 3.19.1"},
		{"missing", "<delete>", Warn, "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := find(t, CheckHost(fakeRoot(t, with(tunedHost(), "etc/os-release", tc.release))), "os")
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) {
				t.Fatalf("got %s %q, want %s containing %q", c.Status, c.Seen, tc.want, tc.seen)
			}
		})
	}
}

// The live machine: every check must produce a verdict with a value, never
// crash, whatever the sandbox hides.
func TestCheckHostLive(t *testing.T) {
	for _, c := range CheckHost("/") {
		if c.Status == "" || c.Seen == "" {
			t.Errorf("%s: empty verdict %+v", c.ID, c)
		}
	}
}

func TestReportJSONAndText(t *testing.T) {
	host := CheckHost(fakeRoot(t, with(tunedHost(), "proc/sys/vm/swappiness", "60", "proc/sys/net/core/somaxconn", "128")))
	r := NewReport(host)
	if r.OK || r.Summary.Fail != 1 || r.Summary.Warn != 1 || r.Summary.Pass != len(host)-2 {
		t.Fatalf("summary %+v ok=%v", r.Summary, r.OK)
	}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		OK      bool `json:"ok"`
		Summary struct {
			Pass, Warn, Fail int
		} `json:"summary"`
		Checks []map[string]any `json:"checks"`
	}
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, buf.String())
	}
	if decoded.OK || decoded.Summary.Fail != 1 || len(decoded.Checks) != len(host) {
		t.Fatalf("decoded %+v", decoded)
	}
	for _, c := range decoded.Checks {
		for _, k := range []string{"section", "id", "name", "status", "seen"} {
			if _, ok := c[k]; !ok {
				t.Errorf("check %v lacks %q", c, k)
			}
		}
	}

	buf.Reset()
	if err := r.WriteText(&buf, false); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, s := range []string{"Host\n", "FAIL  net.core.somaxconn", "128 (want >= 1024)", "why:", "fix: echo 'net.core.somaxconn = 1024'", "1 warn, 1 fail", "problems found"} {
		if !strings.Contains(text, s) {
			t.Errorf("text report lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Errorf("colour off but ANSI codes present")
	}
	buf.Reset()
	_ = r.WriteText(&buf, true)
	if !strings.Contains(buf.String(), ansiRed) {
		t.Errorf("colour on but no red FAIL")
	}
}

func TestRecommendedFilesParse(t *testing.T) {
	kv := regexp.MustCompile(`^([a-z0-9_.\-]+) = (\S+)$`)
	props := regexp.MustCompile(`^([a-z0-9.]+)=(\S+)$`)
	textpb := regexp.MustCompile(`^([a-z_]+) \{ value: (\d+) \}$`)
	tests := []struct {
		name string
		line *regexp.Regexp
		want map[string]string
	}{
		{"sysctl", kv, map[string]string{"net.core.somaxconn": "1024", "net.ipv4.tcp_max_syn_backlog": "4096", "net.ipv4.tcp_tw_reuse": "1",
			"fs.file-max": "1000000", "vm.swappiness": "1", "vm.dirty_ratio": "15", "vm.dirty_background_ratio": "5"}},
		{"kafka-broker", props, map[string]string{"num.partitions": "12", "default.replication.factor": "3", "message.max.bytes": "2000000",
			"replica.fetch.max.bytes": "3000000", "log.retention.hours": "72", "compression.type": "zstd", "min.insync.replicas": "2"}},
		{"kafka-producer", props, map[string]string{"batch.size": "65536", "linger.ms": "5", "compression.type": "zstd", "acks": "all",
			"enable.idempotence": "true"}},
		{"tfserving-batching", textpb, map[string]string{"max_batch_size": "64", "batch_timeout_micros": "1000",
			"max_enqueued_batches": "32", "num_batch_threads": "8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, err := Recommended(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(text, "# /") {
				t.Errorf("first line must say where the file goes: %q", strings.SplitN(text, "\n", 2)[0])
			}
			got := map[string]string{}
			sc := bufio.NewScanner(strings.NewReader(text))
			for sc.Scan() {
				line := sc.Text()
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				m := tc.line.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("line %q does not parse as %s", line, tc.line)
				}
				if _, dup := got[m[1]]; dup {
					t.Errorf("key %s set twice", m[1])
				}
				got[m[1]] = m[2]
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	if _, err := Recommended("nginx"); err == nil || !strings.Contains(err.Error(), "kafka-broker") {
		t.Errorf("unknown name: err = %v, want the list of choices", err)
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		want string // "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"broker without port", func(o *Options) { o.Kafka.Brokers = []string{"kafka-1"} }, "--brokers"},
		{"tfserving without port", func(o *Options) { o.TF.Address = "tf-1" }, "--tfserving"},
		{"rest without port", func(o *Options) { o.TFServingREST = "tf-1" }, "--tfserving-rest"},
		{"huge probe", func(o *Options) { o.ProbeRequests = 1e6 }, "probe requests"},
		{"huge timeout", func(o *Options) { o.SectionTimeout = time.Hour }, "section timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			tc.mod(&o)
			o.SetDefaults()
			err := o.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if tc.want == "" {
				return // running it would dial the real default ports
			}
			if _, err := Run(context.Background(), o); err == nil {
				t.Errorf("Run accepted invalid options")
			}
		})
	}
}

func TestSetDefaultsBoundsClientTimeouts(t *testing.T) {
	o := Options{SectionTimeout: 2 * time.Second}
	o.SetDefaults()
	if o.Kafka.DialTimeout > time.Second || o.Kafka.RequestTimeout > time.Second || o.TF.Timeout > time.Second {
		t.Fatalf("client timeouts exceed half the section: kafka dial %s req %s, tf %s", o.Kafka.DialTimeout, o.Kafka.RequestTimeout, o.TF.Timeout)
	}
	if !o.embeddedKafka || !o.embeddedTF || o.TFServingREST != pipeline.DefaultRESTAddr {
		t.Fatalf("defaults should be the embedded stack: %+v", o)
	}
}
