package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
)

// BenchmarkConsoleOverPty runs the real `inferops console` binary on the
// embedded default (broker, model server, worker, demo traffic) in a 120x40
// pty, as an SSH session would, and reports what it writes to the terminal
// per second at steady state and the CPU the whole process uses. "idle" is
// the same console with no demo traffic. Targets: <= 2 KB/s written.
func BenchmarkConsoleOverPty(b *testing.B) {
	if testing.Short() {
		b.Skip("-short: builds and runs the whole console for a minute")
	}
	bin := filepath.Join(b.TempDir(), "inferops")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		rate string
	}{{"demo500", "500"}, {"idle", "0"}} {
		b.Run(tc.name, func(b *testing.B) {
			cmd := exec.Command(bin, "console", "--data-dir", b.TempDir(), "--kafka-addr", "127.0.0.1:0",
				"--grpc-addr", "127.0.0.1:0", "--rest-addr", "-", "--demo-rate", tc.rate)
			cmd.Env = append(os.Environ(), "TERM=xterm-256color", "NO_COLOR=")
			ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 40})
			if err != nil {
				b.Fatal(err)
			}
			defer ptmx.Close()
			var n atomic.Int64
			go func() {
				buf := make([]byte, 64<<10)
				for {
					k, err := ptmx.Read(buf)
					n.Add(int64(k))
					if err != nil {
						return
					}
				}
			}()
			time.Sleep(30 * time.Second) // start-up, first paint, charts and rates settle
			const span = 20 * time.Second
			n0, c0 := n.Load(), procCPU(cmd.Process.Pid)
			time.Sleep(span)
			bytes, cpu := n.Load()-n0, procCPU(cmd.Process.Pid)-c0
			b.ReportMetric(float64(bytes)/span.Seconds(), "bytes/s")
			b.ReportMetric(100*cpu.Seconds()/span.Seconds(), "%core(process)")
			_, _ = ptmx.Write([]byte("q"))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					b.Errorf("console exited with %v after q", err)
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				b.Error("console did not quit within 30 s of q")
			}
		})
	}
}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}
