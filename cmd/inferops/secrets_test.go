package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestPlantedSecretNeverShows plants SASL passwords (in the environment, in
// a password file, in the config file) and runs the real binary: config
// print (text and JSON), status against an embedded broker that requires
// SCRAM (right and wrong password) and failing config files. No output,
// log line or error may contain a planted value. Extend the table when a
// command gains an output (status --report, the console's export).
func TestPlantedSecretNeverShows(t *testing.T) {
	bin := inferopsBinary(t)
	dir := t.TempDir()
	const (
		envSecret  = "Planted-Env-Secret-7f3a"
		fileSecret = "Planted-File-Secret-91cd"
		yamlSecret = "Planted-Yaml-Secret-55be"
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := stacktest.Start(t, stack.Config{
		Broker: &cluster.BrokerConfig{Ephemeral: true,
			SASL: cluster.BrokerSASL{Mechanism: cluster.SASLScramSHA256, Users: map[string]string{"svc": envSecret, "filesvc": fileSecret, "yamlsvc": yamlSecret}}},
		Models:  &modelserver.Config{RESTAddr: "-"},
		DataDir: dir,
	})
	broker, models := st.Broker, st.Models

	pwFile := filepath.Join(dir, "kafka.password")
	writeFile(t, pwFile, fileSecret+"\n")
	wrongFile := filepath.Join(dir, "wrong.password")
	writeFile(t, wrongFile, "Planted-Wrong-Secret-0c1d\n")
	withYAMLPassword := filepath.Join(dir, "with-password.yaml")
	writeFile(t, withYAMLPassword, fmt.Sprintf("kafka:\n  brokers: [%s]\n  sasl: {mechanism: SCRAM-SHA-256, username: yamlsvc, password: %q}\n", broker.Addr(), yamlSecret))
	badNextToSecret := filepath.Join(dir, "bad.yaml")
	writeFile(t, badNextToSecret, fmt.Sprintf("kafka:\n  sasl: {password: %q, mechanizm: PLAIN}\n", yamlSecret))
	badYAML := filepath.Join(dir, "broken.yaml")
	writeFile(t, badYAML, fmt.Sprintf("kafka:\n  sasl: {password: %s\n", yamlSecret))

	saslArgs := []string{"--brokers", broker.Addr(), "--sasl-mechanism", "SCRAM-SHA-256", "--sample", "0"}
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr bool
		want    string // must appear in the output (proves the command ran)
	}{
		{"config print, env password", []string{"config", "print"}, []string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, "env INFEROPS_SASL_PASSWORD"},
		{"config print --json, env password", []string{"config", "print", "--json"}, []string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, `"value": "***"`},
		{"config print, password in the config file", []string{"config", "print", "--config", withYAMLPassword}, nil, false, "file " + withYAMLPassword},
		{"config print --json, password file", []string{"config", "print", "--json", "--sasl-password-file", pwFile}, nil, false, pwFile},
		{"status, env password", append([]string{"status", "--sasl-username", "svc"}, saslArgs...), []string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, "ai_input"},
		{"status --json, password file", append([]string{"status", "--json", "--sasl-username", "filesvc", "--sasl-password-file", pwFile}, saslArgs...), nil, false, "ai_input"},
		{"status, password from the config file", []string{"status", "--config", withYAMLPassword, "--sample", "0", "--json"}, []string{"INFEROPS_SASL_PASSWORD="}, false, "ai_input"},
		{"status, wrong password file", append([]string{"status", "--sasl-username", "filesvc", "--sasl-password-file", wrongFile}, saslArgs...), nil, true, ""},
		{"status, wrong env password", append([]string{"status", "--sasl-username", "filesvc"}, saslArgs...), []string{"INFEROPS_SASL_PASSWORD=" + envSecret}, true, ""},
		{"worker JSON log at debug, env password", append([]string{"worker", "--sasl-username", "svc", "--log-level", "debug", "--tfserving", models.GRPCAddr()}, saslArgs[:4]...),
			[]string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, `"msg":"worker running"`},
		// After the worker: its telemetry and tombstone are on the fleet topic.
		{"fleet status --json, env password", append([]string{"fleet", "status", "--json", "--sasl-username", "svc"}, saslArgs[:4]...),
			[]string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, `"group": "tf_serving_group"`},
		{"fleet scale, wrong password file", append([]string{"fleet", "scale", "2", "--wait", "--sasl-username", "svc", "--sasl-password-file", wrongFile}, saslArgs[:4]...),
			nil, true, "inferops fleet"},
		{"dlq list --json, env password", append([]string{"dlq", "list", "--json", "--sasl-username", "svc"}, saslArgs[:4]...),
			[]string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, `"topic": "ai_input.dlq"`},
		{"dlq replay --dry-run, env password", append([]string{"dlq", "replay", "--dry-run", "--sasl-username", "svc"}, saslArgs[:4]...),
			[]string{"INFEROPS_SASL_PASSWORD=" + envSecret}, false, "dry run: nothing sent"},
		{"offsets reset --dry-run, wrong password file", append([]string{"offsets", "reset", "--to", "latest", "--dry-run", "--sasl-username", "svc", "--sasl-password-file", wrongFile}, saslArgs[:4]...),
			nil, true, "inferops offsets reset"},
		{"doctor, wrong password file", append([]string{"doctor", "--sasl-username", "svc", "--sasl-password-file", wrongFile, "--tfserving", "127.0.0.1:1"}, saslArgs[:4]...),
			nil, true, "Kafka"},
		{"unknown key next to a password", []string{"config", "print", "--config", badNextToSecret}, nil, true, "kafka.sasl.mechanizm: unknown key (did you mean kafka.sasl.mechanism?)"},
		{"broken YAML around a password", []string{"version", "--config", badYAML}, nil, true, "not valid YAML"},
		{"bad env value with a password set", []string{"config", "print"}, []string{"INFEROPS_SASL_PASSWORD=" + envSecret, "INFEROPS_WORKERS=" + envSecret}, true, "INFEROPS_WORKERS"},
	}
	// Long-running commands are stopped with SIGTERM after this long; their
	// exit status is not checked.
	runFor := map[string]time.Duration{"worker JSON log at debug, env password": 4 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
			defer tcancel()
			cmd := exec.CommandContext(tctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), "INFEROPS_CONFIG=", "INFEROPS_SASL_PASSWORD=", "XDG_STATE_HOME="+filepath.Join(dir, "state"), "HOME="+dir)
			cmd.Env = append(cmd.Env, tt.env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			var err error
			if d := runFor[tt.name]; d > 0 {
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(d)
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			} else {
				err = cmd.Run()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("inferops %s: err %v, wantErr %v\n%s", strings.Join(tt.args, " "), err, tt.wantErr, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
			for _, s := range []string{envSecret, fileSecret, yamlSecret, "Planted-Wrong-Secret-0c1d"} {
				if strings.Contains(out.String(), s) {
					t.Errorf("planted secret %s leaked:\n%s", s, out.String())
				}
			}
		})
	}
}

// TestPlantedSecretNotInStatusReport runs `status --report` against a
// broker that requires SASL PLAIN with a planted password (from
// INFEROPS_SASL_PASSWORD, and from a password file) and greps both report
// files and the output.
func TestPlantedSecretNotInStatusReport(t *testing.T) {
	bin := inferopsBinary(t)
	const planted = "Planted-Report-Secret-4e4e"
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	broker := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{
		SASL: cluster.BrokerSASL{Mechanism: cluster.SASLPlain, Users: map[string]string{"svc": planted}}}, Ephemeral: true}).Broker
	pwFile := filepath.Join(dir, "kafka.password")
	writeFile(t, pwFile, planted+"\n")
	base := []string{"status", "--brokers", broker.Addr(), "--sasl-mechanism", "PLAIN", "--sasl-username", "svc", "--sample", "0"}
	tests := []struct {
		name string
		args []string
		env  string
	}{
		{"env password", nil, "INFEROPS_SASL_PASSWORD=" + planted},
		{"password file", []string{"--sasl-password-file", pwFile}, "INFEROPS_SASL_PASSWORD="},
		{"env password, JSON on stdout", []string{"--json"}, "INFEROPS_SASL_PASSWORD=" + planted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("incident-%d.md", i))
			args := append(append(append([]string{}, base...), tt.args...), "--report", file)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = append(os.Environ(), "INFEROPS_CONFIG=", tt.env, "XDG_STATE_HOME="+dir, "HOME="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("status --report: %v\n%s", err, out)
			}
			files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("incident-%d.*", i)))
			if len(files) != 2 {
				t.Fatalf("want the Markdown report and its JSON twin, got %v", files)
			}
			for _, f := range append(files, "(output)") {
				b := out
				if f != "(output)" {
					b, _ = os.ReadFile(f)
					if !strings.Contains(string(b), "ai_input") {
						t.Errorf("%s lacks the lag table (did status read the broker?):\n%s", f, b)
					}
				}
				if strings.Contains(string(b), planted) {
					t.Errorf("%s contains the planted password", f)
				}
			}
		})
	}
}

// TestSecretsStayOutOfLogs logs what a careless caller might: the whole
// cluster.Config (its Password is a plain string) and an auth error that
// quotes the password. The registry that parse fills scrubs both.
func TestSecretsStayOutOfLogs(t *testing.T) {
	const planted = "Planted-Log-Secret-b0b0"
	t.Setenv("INFEROPS_SASL_PASSWORD", planted)
	t.Setenv("INFEROPS_CONFIG", "")
	fs := newFlags("t", "t", "")
	kc := addKafkaFlags(fs)
	if err := fs.parse([]string{"--sasl-mechanism", "PLAIN", "--sasl-username", "svc"}); err != nil {
		t.Fatal(err)
	}
	if kc.SASL.Password != planted {
		t.Fatalf("password not delivered to the Kafka config")
	}
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log, closeLog, err := logging.New(logging.Options{Format: format, Writer: &buf})
		if err != nil {
			t.Fatal(err)
		}
		log.Info("kafka config", "cfg", *kc, "cfgptr", kc)
		log.Error("connect failed", "err", fmt.Errorf("SASL PLAIN as svc with %s: rejected", kc.SASL.Password))
		log.Warn("retrying with " + kc.SASL.Password)
		closeLog()
		if strings.Contains(buf.String(), planted) {
			t.Errorf("%s log leaked the password:\n%s", format, buf.String())
		}
		if !strings.Contains(buf.String(), config.Redacted) {
			t.Errorf("%s log shows no redaction:\n%s", format, buf.String())
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
