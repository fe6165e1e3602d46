package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/internal/config"
)

// TestConsoleUsageErrors: bad flags exit 2 naming the flag, and without a
// terminal the console says what to use instead (tests run without one).
func TestConsoleUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"console", "--workers", "-1"}, "--workers -1"},
		{[]string{"console", "--demo-rate", "1e9"}, "--demo-rate"},
		{[]string{"console", "--refresh", "10ms"}, "--refresh 10ms"},
		{[]string{"console", "--perf-rate", "-5"}, "--perf-rate"},
		{[]string{"console", "--brokers", "kafka1:9092"}, "--tfserving"},
		{[]string{"console", "--group", " "}, "--group is empty"},
		{[]string{"console", "--data-dir", "DIR"}, "needs a terminal"},
		{[]string{"--data-dir", "DIR"}, "needs a terminal"}, // console is the default command
	}
	for _, tc := range cases {
		dir := t.TempDir()
		args := make([]string, len(tc.args))
		for i, a := range tc.args {
			args[i] = strings.ReplaceAll(a, "DIR", dir)
		}
		var out, errb bytes.Buffer
		code := realMain(args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("inferops %v: exit %d, stderr %q; want exit 2 mentioning %q", args, code, errb.String(), tc.want)
		}
	}
}

// TestConsoleHelpListsItsFlags: console is the default command, and its
// --help still shows its own flags rather than the command list.
func TestConsoleHelpListsItsFlags(t *testing.T) {
	// flag.FlagSet prints help to os.Stderr; catch it in a file.
	f, err := os.CreateTemp(t.TempDir(), "help")
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = f
	var out, errb bytes.Buffer
	realMain([]string{"console", "--help"}, &out, &errb)
	os.Stderr = saved
	_ = f.Close()
	printed, _ := os.ReadFile(f.Name())
	all := out.String() + errb.String() + string(printed)
	for _, f := range []string{"--no-worker", "--read-only", "--demo-rate", "--perf-duration", "--kafka-addr", "--grpc-addr", "--tfserving-metrics", "--fleet-topic", "--control-topic"} {
		if !strings.Contains(all, f) {
			t.Errorf("console --help does not list %s", f)
		}
	}
}

// The console logs JSON to <data-dir>/console.log through internal/logging,
// so a secret in a log line is cut out as in every other command's log.
func TestConsoleLogRedacts(t *testing.T) {
	const planted = "Planted-Console-Log-Secret-77aa"
	config.RegisterSecret(planted)
	dir := filepath.Join(t.TempDir(), "state")
	log, closeLog, err := openConsoleLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	log.Error("attach failed", "err", fmt.Errorf("SASL PLAIN with %s: rejected", planted))
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil || rec["msg"] != "attach failed" {
		t.Fatalf("console.log is not one JSON record: %v\n%s", err, b)
	}
	if strings.Contains(string(b), planted) || !strings.Contains(string(b), config.Redacted) {
		t.Errorf("console.log not redacted:\n%s", b)
	}
}

// TestConsoleSteersTheFleet runs the real console binary on the embedded
// default in a 120x40 pty, as over SSH, with one `inferops worker` process
// joining its broker: the console's own pool and the worker are two
// instances of one fleet, and + in the console scales the fleet's total,
// which both apply (the control topic and every instance's telemetry are
// the evidence, read here through a read-only controller). q still
// drains and quits cleanly.
func TestConsoleSteersTheFleet(t *testing.T) {
	bin := inferopsBinary(t)
	dir := t.TempDir()
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "XDG_STATE_HOME="+filepath.Join(home, "state"), "INFEROPS_METRICS_ADDR=", "TERM=xterm-256color")
	cons := exec.Command(bin, "console", "--config=", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--rest-addr", "127.0.0.1:0", "--demo-rate", "200", "--workers", "2", "--instance", "cons-1")
	cons.Env = env
	ptmx, err := pty.StartWithSize(cons, &pty.Winsize{Cols: 120, Rows: 40})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	go func() { _, _ = io.Copy(io.Discard, ptmx) }()
	exited := make(chan error, 1)
	go func() { exited <- cons.Wait() }()
	t.Cleanup(func() { _ = cons.Process.Kill() })
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		return string(tailBytes(b, 4000))
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.Contains(l, `"event":"dlq"`) && !strings.Contains(l, `"kind":"advice"`) {
					keep = append(keep, l)
				}
			}
			t.Logf("--- console.log without dead letters and advice\n%s", tailBytes([]byte(strings.Join(keep, "\n")), 6000))
		}
	}()

	// Where the embedded stack listens: the console logs it at start.
	var start struct {
		Brokers   []string `json:"brokers"`
		TFServing string   `json:"tfserving"`
	}
	waitFor(t, "the console's start line", 60*time.Second, func() bool {
		for _, l := range strings.Split(logs(), "\n") {
			if strings.Contains(l, `"console starting"`) && json.Unmarshal([]byte(l), &start) == nil && len(start.Brokers) == 1 {
				return true
			}
		}
		return false
	})
	wk := exec.Command(bin, "worker", "--config=", "--brokers", start.Brokers[0], "--tfserving", start.TFServing, "--instance", "wk-1", "--workers", "2")
	wk.Env = env
	var wlog bytes.Buffer
	wk.Stderr = &wlog
	if err := wk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wk.Process.Kill(); _ = wk.Wait() })

	kc := cluster.Config{Brokers: start.Brokers}
	kc.SetDefaults()
	octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	ctl, err := fleet.Open(octx, fleet.ControllerConfig{Kafka: kc, ReadOnly: "the test only watches"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	waitView(t, ctl, "the console's pool and the worker, 2 workers each", 90*time.Second, func(v fleet.View) bool {
		return v.Totals.Live == 2 && v.Totals.Workers == 4
	})

	// Embedded: + scales at once (no y/n), the fleet's total, not the
	// console's own pool. The console refuses + until its own first view
	// of the fleet is in (the test's may come first): press until a
	// desired state appears, then never again.
	deadline := time.Now().Add(30 * time.Second)
	for ctl.View().Desired == nil && time.Now().Before(deadline) {
		if _, err := ptmx.Write([]byte("+")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	v := waitView(t, ctl, "5 workers spread 3 + 2, applied by both", 60*time.Second, func(v fleet.View) bool {
		c, _ := v.Instance("cons-1")
		w, _ := v.Instance("wk-1")
		return v.Desired != nil && v.Desired.Workers != nil && *v.Desired.Workers == 5 && v.Totals.Applied == 2 &&
			c.Snapshot != nil && c.Workers == 3 && w.Snapshot != nil && w.Workers == 2
	})
	var change, ack bool
	for _, e := range v.Events {
		change = change || strings.Contains(e.Message, ": scale to 5 workers (seq 1)")
		ack = ack || strings.Contains(e.Message, "2/2 instances applied scale to 5 workers")
	}
	if !change || !ack {
		t.Errorf("fleet events %+v: want the console's change and its acknowledgement", v.Events)
	}

	if _, err := ptmx.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("console exited with %v after q", err)
		}
	case <-time.After(45 * time.Second):
		t.Error("console did not quit within 45 s of q")
	}
	if t.Failed() {
		t.Logf("--- worker stderr (last 3 KB)\n%s", tailBytes(wlog.Bytes(), 3000))
	}
}
