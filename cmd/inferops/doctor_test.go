package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// closedAddr is a loopback address nothing listens on: connection refused,
// immediately, like a stopped broker.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDoctorCommand(t *testing.T) {
	root := t.TempDir()
	for p, v := range map[string]string{
		"etc/os-release":         "ID=\"rhel\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.9 (Ootpa)\"\n",
		"proc/sys/vm/swappiness": "60\n",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	down := closedAddr(t)
	tests := []struct {
		name     string
		args     []string
		wantErr  error // nil, errUsage or errDoctorFailed
		contains []string
	}{
		{"print sysctl", []string{"--print", "sysctl"}, nil, []string{"# /etc/sysctl.d/99-inferops.conf", "vm.swappiness = 1"}},
		{"print producer", []string{"--print", "kafka-producer"}, nil, []string{"linger.ms=5", "acks=all"}},
		{"print unknown", []string{"--print", "nginx"}, errUsage, nil},
		{"bad workers", []string{"--workers", "0", "--proc-root", root}, errUsage, nil},
		{"bad SLO", []string{"--predict-slo", "-1s", "--proc-root", root}, errUsage, nil},
		{"bad proc root", []string{"--proc-root", filepath.Join(root, "nope")}, errUsage, nil},
		{"bad brokers", []string{"--brokers", "kafka-1", "--proc-root", root}, errUsage, nil},
		{"nothing running -> FAIL with the fix", []string{"--proc-root", root, "--brokers", down, "--tfserving", down, "--timeout", "2s"},
			errDoctorFailed, []string{"Host\n", "Kafka\n", "TF Serving\n", "connection refused", "check --brokers", "Red Hat Enterprise Linux 8.9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runCmd(context.Background(), "doctor", tc.args, &out, io.Discard)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v\n%s", err, tc.wantErr, out.String())
			}
			for _, s := range tc.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			if strings.Contains(out.String(), "\x1b[") {
				t.Errorf("colour written to a non-terminal")
			}
		})
	}
}

func TestDoctorJSONShape(t *testing.T) {
	down := closedAddr(t)
	var out bytes.Buffer
	err := runCmd(context.Background(), "doctor", []string{"--json", "--brokers", down, "--tfserving", down, "--tfserving-rest", down, "--timeout", "2s"}, &out, io.Discard)
	if !errors.Is(err, errDoctorFailed) {
		t.Fatalf("err = %v, want a FAIL exit", err)
	}
	var r struct {
		OK      bool           `json:"ok"`
		Summary map[string]int `json:"summary"`
		Checks  []struct {
			Section, ID, Name, Status, Seen, Want, Why, Fix string
		} `json:"checks"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if r.OK || r.Summary["fail"] < 2 {
		t.Fatalf("ok=%v summary=%v", r.OK, r.Summary)
	}
	sections := map[string]bool{}
	for _, c := range r.Checks {
		sections[c.Section] = true
		if c.ID == "" || c.Status == "" || c.Seen == "" {
			t.Errorf("incomplete check %+v", c)
		}
		if c.Status == "FAIL" && c.Fix == "" {
			t.Errorf("FAIL without a fix: %+v", c)
		}
	}
	for _, s := range []string{"Host", "Kafka", "TF Serving"} {
		if !sections[s] {
			t.Errorf("no %s section in %v", s, sections)
		}
	}
}

// tunedProcRoot is a RHEL 8 host configured as the seed says, with chronyd.
func tunedProcRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/os-release":   "ID=\"rhel\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.9 (Ootpa)\"\n",
		"proc/self/limits": "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1048576              1048576              files     \n",
		"proc/700/comm":    "chronyd\n",
	}
	for _, s := range doctor.Sysctls {
		files["proc/sys/"+strings.ReplaceAll(s.Key, ".", "/")] = fmt.Sprintln(s.Want)
	}
	for p, v := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// The whole command against the real embedded stack (broker with the
// pipeline topics, model server with batching) on a tuned host: every
// section runs and nothing FAILs, so doctor exits 0.
func TestDoctorHealthyStackExitsZero(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{EnableBatching: true}})
	args := []string{"--config=", "--proc-root", tunedProcRoot(t), "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--tfserving-rest", st.Addrs.REST,
		// Generous: this test is about every section running, and a loaded
		// CI machine must not turn the 50-call probe into a WARN/FAIL.
		"--predict-slo", "5s"}
	var out bytes.Buffer
	if err := runCmd(ctx, "doctor", args, &out, io.Discard); err != nil {
		t.Fatalf("doctor: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, s := range []string{"PASS  input topic ai_input", "PASS  output and DLQ topics", "exists, 12 partitions", "PASS  model my_model", "PASS  server-side batching", "PASS  Predict p99 (probe)", ": healthy"} {
		if !strings.Contains(text, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	if strings.Contains(text, "FAIL") {
		t.Errorf("a FAIL in a healthy stack")
	}
	if t.Failed() || testing.Verbose() {
		t.Log("\n" + text)
	}
}

// Colour only on a terminal, and never with NO_COLOR (https://no-color.org).
func TestDoctorColourOnlyOnATerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name    string
		w       io.Writer
		noColor bool
		want    bool
	}{
		{"terminal", tty, false, true},
		{"terminal with NO_COLOR", tty, true, false},
		{"file", f, false, false},
		{"buffer", &bytes.Buffer{}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noColor {
				t.Setenv("NO_COLOR", "1")
			} else {
				t.Setenv("NO_COLOR", "") // registers the restore of any outer value
				os.Unsetenv("NO_COLOR")
			}
			if got := colourOK(tc.w); got != tc.want {
				t.Fatalf("colourOK = %v, want %v", got, tc.want)
			}
		})
	}
}
