package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one inferops process. Its stdout and stderr are kept line by
// line (and in a log file under the test's temp dir, printed when the
// test fails).
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  string

	mu    sync.Mutex
	lines []string
	grew  chan struct{} // closed and replaced whenever a line arrives

	done    chan struct{}
	waitErr error
}

var procSeq struct {
	sync.Mutex
	n int
}

// start runs `inferops args...` with no INFEROPS_* variable of ours leaking
// in and no config file.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, name, nil, args...)
}

// startEnv is start with extra environment variables (GODEBUG=gctrace=1).
func startEnv(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	procSeq.Lock()
	procSeq.n++
	n := procSeq.n
	procSeq.Unlock()
	p := &proc{t: t, name: name, grew: make(chan struct{}), done: make(chan struct{})}
	p.log = filepath.Join(t.TempDir(), fmt.Sprintf("%02d-%s.log", n, name))
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, append(args[:1:1], append([]string{"--config="}, args[1:]...)...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFEROPS_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			p.mu.Lock()
			if len(p.lines) < 200000 {
				p.lines = append(p.lines, line)
			}
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		}
		logf.Close()
	}()
	go func() {
		p.waitErr = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("CHAOS_VERBOSE") != "" {
			p.dumpTail(40)
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLine waits for a line containing every one of subs and returns it.
func (p *proc) waitLine(timeout time.Duration, subs ...string) string {
	p.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if containsAll(p.lines[seen], subs) {
				line := p.lines[seen]
				p.mu.Unlock()
				return line
			}
		}
		grew := p.grew
		p.mu.Unlock()
		select {
		case <-grew:
		case <-p.done:
			// Read what the pipe still holds before giving up.
			time.Sleep(100 * time.Millisecond)
			p.mu.Lock()
			for ; seen < len(p.lines); seen++ {
				if containsAll(p.lines[seen], subs) {
					line := p.lines[seen]
					p.mu.Unlock()
					return line
				}
			}
			p.mu.Unlock()
			p.dumpTail(30)
			p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.waitErr, subs)
		case <-deadline:
			p.dumpTail(30)
			p.t.Fatalf("%s did not print %q within %v", p.name, subs, timeout)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// linesFrom returns the lines from index i on, and the next index.
func (p *proc) linesFrom(i int) ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i > len(p.lines) {
		i = len(p.lines)
	}
	return append([]string(nil), p.lines[i:]...), len(p.lines)
}

// count is how many lines so far contain every one of subs.
func (p *proc) count(subs ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if containsAll(l, subs) {
			n++
		}
	}
	return n
}

func (p *proc) dumpTail(n int) {
	p.mu.Lock()
	lines := p.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	p.mu.Unlock()
	p.t.Logf("--- last lines of %s (full log %s):\n%s", p.name, p.log, strings.Join(lines, "\n"))
}

// kill is SIGKILL: no drain, no commit, no goodbye to the group.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop is SIGTERM, and waits for a clean exit; it returns the exit error.
func (p *proc) stop(timeout time.Duration) error {
	p.t.Helper()
	if p.exited() {
		return p.waitErr
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.name, timeout)
	}
}

// rssBytes reads VmRSS from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// freeAddr is a loopback address nothing listens on right now, for a
// process that must come back on the same port after a restart.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// addrs is what `serve` printed on its ready line.
type addrs struct {
	Kafka, KafkaListen, GRPC, REST string
}

// serve starts `inferops serve` on dataDir; extra flags come after the
// defaults (ephemeral ports, warnings only in the log), so they win.
func serve(t testing.TB, dataDir string, extra ...string) (*proc, addrs) {
	t.Helper()
	return serveEnv(t, nil, dataDir, extra...)
}

// serveEnv is serve with extra environment variables.
func serveEnv(t testing.TB, env []string, dataDir string, extra ...string) (*proc, addrs) {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir,
		"--kafka-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0",
		"--log-level", "warn"}, extra...)
	p := startEnv(t, "serve", env, args...)
	line := p.waitLine(2*time.Minute, "inferops serve: ready")
	var a addrs
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "kafka":
			a.Kafka = v
		case "kafka-listen":
			a.KafkaListen = v
		case "grpc":
			a.GRPC = v
		case "rest":
			a.REST = v
		}
	}
	if a.KafkaListen == "" {
		a.KafkaListen = a.Kafka
	}
	return p, a
}

// hasFlag is whether the binary's command knows --name (an older binary
// under INFEROPS_BIN may not).
func hasFlag(cmd, name string) bool {
	out, _ := exec.Command(bin, cmd, "--help").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "--"+name {
			return true
		}
	}
	return false
}

// worker starts `inferops worker` and waits until it consumes.
func worker(t testing.TB, kafka, tfs string, extra ...string) *proc {
	t.Helper()
	args := []string{"worker", "--brokers", kafka, "--tfserving", tfs, "--workers", "4"}
	if hasFlag("worker", "instance") {
		args = append(args, "--instance", "chaos")
	}
	p := start(t, "worker", append(args, extra...)...)
	p.waitLine(time.Minute, "worker running")
	return p
}
