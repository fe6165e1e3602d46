package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inferops/inferops/internal/testpki"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// inferopsBinary is the built command, for tests of real signals, exit
// codes and stdout.
func inferopsBinary(t *testing.T) string { return stacktest.Binary(t) }

// TestCommandsOverTCP runs the built binary (one build for all of these):
// serve's ready line, signals and start errors; status against an embedded
// broker. Real processes, real exit codes, real TCP.
func TestCommandsOverTCP(t *testing.T) {
	bin := inferopsBinary(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"serve ready and signals", testServeReadyAndSignals},
		{"serve start errors", testServeStartErrors},
		{"serve broker off", testServeBrokerOff},
		{"status json", testStatusJSON},
		{"status text", testStatusText},
		{"status errors", testStatusErrors},
		{"status no embedded broker", testStatusNoEmbeddedBroker},
		{"status topic alias", testStatusTopicAlias},
		{"status report", testStatusReport},
		{"status report of an unreachable broker", testStatusReportOfUnreachableBroker},
		{"status read-only", testStatusReadOnly},
		{"status against serve with SASL and TLS", testStatusAgainstSecuredServe},
		{"serve logs", testServeLogs},
		{"serve a stand-in", testServeStandIn},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, bin) })
	}
}

// serveProcess prepares `inferops serve` with every listener on a random port and
// all state under a temp dir, whatever parts are registered.
func serveProcess(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(),
		"XDG_STATE_HOME="+filepath.Join(tmp, "state"),
		"HOME="+tmp,
		"INFEROPS_KAFKA_ADDR=127.0.0.1:0",
		"INFEROPS_GRPC_ADDR=127.0.0.1:0",
		"INFEROPS_REST_ADDR=127.0.0.1:0",
		"INFEROPS_METRICS_ADDR=",
	)
	return cmd
}

// readyFields parses "inferops serve: ready kafka=... data=..." into a map.
func readyFields(line string) map[string]string {
	m := map[string]string{}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "inferops serve: ready ")
	if !ok {
		return nil
	}
	for _, f := range strings.Fields(rest) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

func testServeReadyAndSignals(t *testing.T, bin string) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "state")
			cmd := serveProcess(t, bin, "--data-dir", dataDir)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(stdout)
			lineCh := make(chan string, 1)
			go func() {
				if lines.Scan() {
					lineCh <- lines.Text()
				}
				close(lineCh)
			}()
			var ready string
			select {
			case ready = <-lineCh:
			case <-time.After(60 * time.Second):
				t.Fatalf("no ready line; stderr:\n%s", stderr.String())
			}
			f := readyFields(ready)
			if f == nil || f["kafka"] == "" {
				t.Fatalf("ready line %q does not name kafka=; stderr:\n%s", ready, stderr.String())
			}
			if f["data"] != dataDir {
				t.Errorf("ready line data=%q, want %q", f["data"], dataDir)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "kafka")); err != nil {
				t.Errorf("broker data not under <data-dir>/kafka: %v", err)
			}
			// A real client over TCP sees the pipeline topics.
			cfg := cluster.Config{Brokers: []string{f["kafka"]}}
			sc, err := cfg.Sarama()
			if err != nil {
				t.Fatal(err)
			}
			c, err := sarama.NewClient(cfg.Brokers, sc)
			if err != nil {
				t.Fatalf("connect to %s: %v", f["kafka"], cfg.Explain(err))
			}
			topics, err := c.Topics()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(","+strings.Join(topics, ",")+",", ",ai_input,") {
				t.Errorf("topics = %v, want ai_input among them", topics)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			err = cmd.Wait()
			if err != nil {
				t.Fatalf("exit after %v: %v; stderr:\n%s", sig, err, stderr.String())
			}
			if !strings.Contains(string(rest), "inferops serve: stopped") {
				t.Errorf("no stopped line after %v; stdout rest %q", sig, rest)
			}
			// The port is free again: the broker really closed.
			if ln, err := net.Listen("tcp", f["kafka"]); err != nil {
				t.Errorf("kafka port still taken after stop: %v", err)
			} else {
				ln.Close()
			}
		})
	}
}

func testServeStartErrors(t *testing.T, bin string) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"taken port", []string{"--ephemeral", "--kafka-addr", taken.Addr().String()}, 1, []string{"--kafka-addr", taken.Addr().String(), "already in use"}},
		{"bad address", []string{"--ephemeral", "--kafka-addr", "localhost"}, 1, []string{"--kafka-addr", "host:port"}},
		{"unwritable data dir", []string{"--data-dir", filepath.Join(file, "sub")}, 1, []string{"--data-dir"}},
		{"bad sasl user", []string{"--ephemeral", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "nopassword"}, 1, []string{"--kafka-sasl-user", "user:password"}},
		{"unknown flag", []string{"--ephemeral", "--no-such-flag"}, 2, []string{"no-such-flag", "inferops serve --help"}},
		{"bad flag value", []string{"--ephemeral=maybe"}, 2, []string{"-ephemeral", "maybe"}},
		{"bad log level", []string{"--ephemeral", "--log-level", "loud"}, 2, []string{"--log-level", "loud"}},
		{"stand-in without a file", []string{"--ephemeral", "--stand-in", "ranker"}, 2, []string{"--stand-in", "want NAME=FILE"}},
		{"stand-in with a bad dtype", []string{"--ephemeral", "--broker=false", "--stand-in", "ranker=" + badStandIn(t)}, 1,
			[]string{"--stand-in ranker=", `metadata.signature_def.signature_def.serving_default.inputs.user_id.dtype: "DT_FLAOT" is not a TF dtype`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"serve"}, tt.args...)...)
			cmd.Env = serveProcess(t, bin).Env
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "serve: ready") {
				t.Errorf("printed a ready line despite failing:\n%s", out)
			}
		})
	}
}

func testServeBrokerOff(t *testing.T, bin string) {
	out, err := serveProcess(t, bin, "--ephemeral", "--broker=false", "--model-server=false").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "nothing to serve") {
		t.Fatalf("--broker=false --model-server=false: %v\n%s", err, out)
	}
	// The model server still runs: the ready line names it but no kafka=.
	line, stop := serveReadyLine(t, bin, nil, "--ephemeral", "--broker=false")
	if f := readyFields(line); f == nil || f["kafka"] != "" || len(f) < 2 {
		t.Errorf("--broker=false ready line %q: want other parts and no kafka=", line)
	}
	if stderr, err := stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, stderr)
	}
}

// The ready line names the broker first, then the model server, then the
// state; a part that does not run (or REST switched off) is left out.
func TestReadyLine(t *testing.T) {
	tests := []struct {
		addrs     stack.Addrs
		ephemeral bool
		want      string
	}{
		{stack.Addrs{Kafka: "k:1", GRPC: "g:2", REST: "r:3"}, false, "kafka=k:1 grpc=g:2 rest=r:3 data=/state"},
		{stack.Addrs{GRPC: "g:2"}, true, "grpc=g:2 data=memory"},
		{stack.Addrs{Kafka: "k:1"}, false, "kafka=k:1 data=/state"},
	}
	for _, tt := range tests {
		if got := readyLine(tt.addrs, "/state", tt.ephemeral); got != tt.want {
			t.Errorf("readyLine(%+v) = %q, want %q", tt.addrs, got, tt.want)
		}
	}
}

func TestParseSASLUsers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte("# comment\ncarol:pw3\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		list    []string
		file    string
		want    map[string]string
		wantErr string
	}{
		{"none", nil, "", nil, ""},
		{"flag", []string{"alice:pw1", "bob:p:w2"}, "", map[string]string{"alice": "pw1", "bob": "p:w2"}, ""},
		{"file", nil, file, map[string]string{"carol": "pw3"}, ""},
		{"no colon", []string{"alice"}, "", nil, "--kafka-sasl-user"},
		{"empty password", []string{"alice:"}, "", nil, "user:password"},
		{"missing file", nil, file + ".nope", nil, "--kafka-sasl-users-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSASLUsers(tt.list, tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "alice") {
					t.Errorf("error echoes the entry: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("user %s: got %q, want %q", k, got[k], v)
				}
				if s := config.Scrub("rejected " + v); strings.Contains(s, v) {
					t.Errorf("password of %s not registered for scrubbing: %q", k, s)
				}
			}
		})
	}
}

// startServe runs `inferops serve` with the given flags and environment and
// returns its ready line's fields; the process is stopped at cleanup.
func startServe(t *testing.T, bin string, env []string, args ...string) map[string]string {
	t.Helper()
	f, _ := startServeStop(t, bin, env, args...)
	return f
}

// startServeStop is startServe that also returns stop: SIGTERM, wait, and
// the process's stderr.
func startServeStop(t *testing.T, bin string, env []string, args ...string) (map[string]string, func() string) {
	t.Helper()
	line, stop := serveReadyLine(t, bin, env, args...)
	stopped := func() string { stderr, _ := stop(); return stderr }
	f := readyFields(line)
	if f == nil || f["kafka"] == "" {
		t.Fatalf("serve %v: ready line %q; stderr:\n%s", args, line, stopped())
	}
	return f, stopped
}

// serveReadyLine starts `inferops serve` with the given flags and
// environment and returns its first stdout line (the ready line, unjudged)
// and stop: SIGTERM, wait, and the process's stderr with the wait's error.
// The process is stopped at cleanup.
func serveReadyLine(t *testing.T, bin string, env []string, args ...string) (string, func() (string, error)) {
	t.Helper()
	cmd := serveProcess(t, bin, args...)
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		once    sync.Once
		waitErr error
	)
	stop := func() (string, error) {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			waitErr = cmd.Wait()
		})
		return stderr.String(), waitErr
	}
	t.Cleanup(func() { stop() })
	lineCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lineCh <- sc.Text()
		}
		close(lineCh)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lineCh:
		return line, stop
	case <-time.After(60 * time.Second):
		t.Fatalf("serve %v: no ready line; stderr:\n%s", args, stderr.String())
	}
	return "", stop
}

// syncBuffer is a bytes.Buffer that a process may write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServeLogs: serve logs through internal/logging: JSON lines on stderr
// by default (stdout keeps only the ready and stopped lines), text to
// --log-file on request, and a broker user's password never appears, even
// at debug level after a client failed to authenticate with it wrong.
func testServeLogs(t *testing.T, bin string) {
	const planted = "Planted-Serve-Secret-1a2b"
	users := []string{"INFEROPS_KAFKA_SASL_USER=svc:" + planted}
	t.Run("json to stderr", func(t *testing.T) {
		f, stop := startServeStop(t, bin, users, "--ephemeral", "--model-server=false", "--kafka-sasl-mechanism", "PLAIN", "--log-level", "debug")
		// A failed login, then a good one, so the broker has something to log.
		_, _, _ = runInferopsEnv(t, bin, []string{"INFEROPS_SASL_PASSWORD=wrong-" + planted}, "status", "--brokers", f["kafka"], "--sasl-mechanism", "PLAIN", "--sasl-username", "svc", "--sample", "0")
		if _, errOut, code := runInferopsEnv(t, bin, []string{"INFEROPS_SASL_PASSWORD=" + planted}, "status", "--brokers", f["kafka"], "--sasl-mechanism", "PLAIN", "--sasl-username", "svc", "--sample", "0"); code != 0 {
			t.Fatalf("status with the right password: exit %d: %s", code, errOut)
		}
		logText := stop()
		var msgs []string
		for _, line := range strings.Split(strings.TrimSpace(logText), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("stderr line is not JSON: %q", line)
				continue
			}
			msg, _ := rec["msg"].(string)
			msgs = append(msgs, msg)
		}
		if !strings.Contains(strings.Join(msgs, "|"), "embedded kafka ready") || !strings.Contains(strings.Join(msgs, "|"), "shutting down") {
			t.Errorf("log lacks the ready and shutdown records: %v", msgs)
		}
		if strings.Contains(logText, planted) {
			t.Errorf("serve log leaked the broker password:\n%s", logText)
		}
	})
	t.Run("text to --log-file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "serve.log")
		_, stop := startServeStop(t, bin, nil, "--ephemeral", "--model-server=false", "--log-format", "text", "--log-file", file)
		if errOut := stop(); strings.TrimSpace(errOut) != "" {
			t.Errorf("stderr not empty with --log-file: %q", errOut)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `msg="embedded kafka ready"`) {
			t.Errorf("--log-file lacks the text record of the ready broker:\n%s", b)
		}
	})
}

// testStatusAgainstSecuredServe: the broker `inferops serve` starts with
// --kafka-sasl-* (users from the environment, not the command line) and
// with --kafka-tls-server-*; `inferops status` reaches it with the
// operator's flags and INFEROPS_SASL_PASSWORD, and fails clearly otherwise.
func testStatusAgainstSecuredServe(t *testing.T, bin string) {
	const password = "s3rve-Secret-pw"
	ca, cert, key := testpki.WriteServer(t, t.TempDir())
	users := []string{"INFEROPS_KAFKA_SASL_USER=svc:" + password}
	scram := startServe(t, bin, users, "--ephemeral", "--model-server=false", "--kafka-sasl-mechanism", "SCRAM-SHA-512")["kafka"]
	tlsOnly := startServe(t, bin, nil, "--ephemeral", "--model-server=false", "--kafka-tls-server-cert-file", cert, "--kafka-tls-server-key-file", key)["kafka"]
	saslTLS := startServe(t, bin, users, "--ephemeral", "--model-server=false", "--kafka-sasl-mechanism", "PLAIN",
		"--kafka-tls-server-cert-file", cert, "--kafka-tls-server-key-file", key)["kafka"]

	pw := "INFEROPS_SASL_PASSWORD=" + password
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string // in stdout when code is 0, else in stderr
	}{
		{"SCRAM-SHA-512, env password", []string{pw}, []string{"--brokers", scram, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "svc"}, 0, "topic ai_input"},
		{"SCRAM-SHA-512, wrong password", []string{"INFEROPS_SASL_PASSWORD=wrong"}, []string{"--brokers", scram, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "svc"}, 1, "authentication failed"},
		{"SCRAM-SHA-512, no SASL", nil, []string{"--brokers", scram}, 1, scram},
		{"TLS with the CA", nil, []string{"--brokers", tlsOnly, "--kafka-tls-ca-file", ca}, 0, "topic ai_input"},
		{"TLS without the CA", nil, []string{"--brokers", tlsOnly, "--kafka-tls"}, 1, "certificate"},
		{"TLS broker, plaintext client", nil, []string{"--brokers", tlsOnly}, 1, tlsOnly},
		{"PLAIN over TLS", []string{pw}, []string{"--brokers", saslTLS, "--kafka-tls-ca-file", ca, "--sasl-mechanism", "PLAIN", "--sasl-username", "svc"}, 0, "topic ai_input"},
		{"PLAIN over TLS from env only", []string{pw, "INFEROPS_BROKERS=" + saslTLS, "INFEROPS_KAFKA_TLS_CA_FILE=" + ca, "INFEROPS_SASL_MECHANISM=PLAIN", "INFEROPS_SASL_USERNAME=svc"}, nil, 0, "topic ai_input"},
		{"PLAIN over TLS, wrong user", []string{pw}, []string{"--brokers", saslTLS, "--kafka-tls-ca-file", ca, "--sasl-mechanism", "PLAIN", "--sasl-username", "nobody"}, 1, "authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runInferopsEnv(t, bin, tt.env, append([]string{"status", "--sample", "0"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			got := out
			if tt.code != 0 {
				got = errOut
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tt.want, out, errOut)
			}
			if strings.Contains(out+errOut, password) {
				t.Errorf("password leaked:\n%s%s", out, errOut)
			}
		})
	}
}

// standInFile is one of the model server's test metadata files.
func standInFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "infer", "modelserver", "testdata", "stand-in", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// badStandIn is ranker.json with a misspelt dtype.
func badStandIn(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(standInFile(t, "ranker.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), `"DT_INT64",`, `"DT_FLAOT",`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testServeStandIn: `serve --stand-in` serves the file's signature next to
// the shipped models, and status and doctor say it is a stand-in.
func testServeStandIn(t *testing.T, bin string) {
	f := startServe(t, bin, nil, "--ephemeral", "--stand-in", "half_plus_two="+standInFile(t, "half_plus_two.json"))
	resp, err := http.Get("http://" + f["rest"] + "/v1/models/half_plus_two/metadata")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"__inferops_stand_in__"`) || !strings.Contains(string(body), `"version": "123"`) {
		t.Fatalf("metadata %d: %s", resp.StatusCode, body)
	}
	out, errOut, code := runInferops(t, bin, "status", "--brokers", "127.0.0.1:1", "--tfserving", f["grpc"], "--model", "half_plus_two", "--sample", "0")
	if !strings.Contains(out, "a STAND-IN") || !strings.Contains(out, "input   x  DT_FLOAT  [-1]") {
		t.Errorf("status (exit %d) does not say stand-in:\n%s\n%s", code, out, errOut)
	}
	out, _, _ = runInferops(t, bin, "doctor", "--host=false", "--brokers", "127.0.0.1:1", "--timeout", "3s", "--tfserving", f["grpc"], "--model", "half_plus_two", "--json")
	if !strings.Contains(out, "tfserving.standin") || !strings.Contains(out, "is a stand-in") {
		t.Errorf("doctor does not say stand-in:\n%s", out)
	}
	out, _, _ = runInferops(t, bin, "status", "--brokers", "127.0.0.1:1", "--tfserving", f["grpc"], "--model", "ads_ctr", "--sample", "0")
	if strings.Contains(out, "STAND-IN") || !strings.Contains(out, "input   query    DT_STRING  [-1]") {
		t.Errorf("the shipped ads_ctr next to the stand-in:\n%s", out)
	}
}
