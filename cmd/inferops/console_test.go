package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
