package logging

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

type creds struct {
	User string
	Pass string
}

type stringer struct{ s string }

func (s stringer) String() string { return "conn " + s.s }

func TestNewRedactsEverywhere(t *testing.T) {
	const planted = "planted-Logging-Secret-42"
	config.RegisterSecret(planted)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, closeLog, err := New(Options{Format: format, Level: "debug", Writer: &buf})
			if err != nil {
				t.Fatal(err)
			}
			defer closeLog()
			log.Info("connecting with "+planted, "password", "literal-by-key", "sasl_password", "other-literal")
			log.Debug("typed", "pw", config.Secret(planted))
			log.Warn("error", "err", fmt.Errorf("kafka: SASL auth as svc/%s failed", planted))
			log.Error("struct", "creds", creds{"svc", planted}, "ptr", &creds{"svc", planted}, "conn", stringer{planted})
			log.With("token", "with-attr-token").WithGroup("g").Info("group", "inner", planted)
			out := buf.String()
			for _, leak := range []string{planted, "literal-by-key", "other-literal", "with-attr-token"} {
				if strings.Contains(out, leak) {
					t.Errorf("%s leaked into the %s log:\n%s", leak, format, out)
				}
			}
			if n := strings.Count(out, "\n"); n != 5 {
				t.Errorf("%d lines, want 5 (debug enabled):\n%s", n, out)
			}
			if !strings.Contains(out, "***") {
				t.Errorf("no redaction marker:\n%s", out)
			}
			if format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Errorf("not one JSON object per line (journald): %q: %v", line, err)
					}
				}
			}
		})
	}
}

func TestLevelsAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "console.log")
	log, closeLog, err := New(Options{Format: "text", Level: "warn", File: path})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "n", 1)
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hidden") || !strings.Contains(string(b), "msg=shown n=1") {
		t.Errorf("log file:\n%s", b)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600 (it may hold hostnames and user names)", st.Mode().Perm())
	}
	if ConsoleFile("/var/lib/inferops") != "/var/lib/inferops/console.log" {
		t.Error("ConsoleFile")
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{Level: "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{Options{Format: "xml"}, `--log-format "xml": want json or text`},
		{Options{File: "/proc/no/such/dir/x.log"}, `--log-file /proc/no/such/dir/x.log`},
	}
	for _, tt := range tests {
		_, _, err := New(tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.o, err, tt.want)
		}
	}
	if _, err := ParseLevel("WARNING"); err != nil {
		t.Error(err)
	}
	var o Options
	o.SetDefaults()
	if o.Format != "json" || o.Level != "info" || o.Validate() != nil {
		t.Errorf("defaults %+v", o)
	}
}
