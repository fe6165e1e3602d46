package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tfserving"
)

// TestServeModelServer runs `inferops serve` with only the model server and
// sends it the seed's consumer_inference.py request from Go and, when
// installed, from python3-requests; then our gRPC client.
func TestServeModelServer(t *testing.T) {
	bin := inferopsBinary(t)
	line, stop := serveReadyLine(t, bin, nil, "--ephemeral", "--broker=false", "--enable-batching")
	f := readyFields(line)
	if f["grpc"] == "" || f["rest"] == "" || f["kafka"] != "" {
		stderr, _ := stop()
		t.Fatalf("ready fields %v; stderr:\n%s", f, stderr)
	}

	features := "[" + strings.TrimSuffix(strings.Repeat("0.25, ", 32), ", ") + "]"
	body := `{"instances": [` + features + `]}`
	url := "http://" + f["rest"] + "/v1/models/my_model:predict"
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Predictions [][]float64 }
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(res.Predictions) != 1 || res.Predictions[0][0] <= 0 || res.Predictions[0][0] >= 1 {
		t.Fatalf("net/http: %d %v %v", resp.StatusCode, res, err)
	}

	if _, err := os.Stat("/usr/bin/python3"); err == nil && exec.Command("/usr/bin/python3", "-c", "import requests").Run() == nil {
		script := `import requests
payload = {"instances": [` + features + `]}
r = requests.post("` + url + `", json=payload)
print(r.status_code, r.json()["predictions"][0][0])`
		out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "200 0.") {
			t.Fatalf("python3 requests: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("python3-requests missing under CI=true (make test-deps installs it)")
	} else {
		t.Log("python3-requests missing: skipped the python half (apt-get install python3-requests)")
	}

	c, err := tfserving.Dial(tfserving.Config{Address: f["grpc"]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.ModelStatus(context.Background(), "my_model")
	// `inferops serve` with no model flags serves my_model versions 1 and 2.
	if err != nil || len(st) != 2 || st[0].State != "AVAILABLE" || st[1].State != "AVAILABLE" {
		t.Fatalf("status over gRPC: %v %v", st, err)
	}

	if stderr, err := stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr)
	}
}

func TestServeModelServerFlagErrors(t *testing.T) {
	bin := inferopsBinary(t)
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"batching file without batching", []string{"--batching-parameters-file", "/etc/hostname"}, "needs --enable-batching"},
		{"missing base path", []string{"--model-base-path", "/nonexistent/models/m"}, "--model-base-path"},
		{"negative timeout", []string{"--enable-batching", "--batching-timeout-micros=-1"}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := serveProcess(t, bin, append([]string{"--ephemeral", "--broker=false"}, tt.args...)...).CombinedOutput()
			if _, ok := err.(*exec.ExitError); !ok || !strings.Contains(string(out), tt.msg) || strings.Contains(string(out), "serve: ready") {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}
