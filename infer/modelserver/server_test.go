package modelserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// startServer runs a real server on loopback port 0 under a temp data dir.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	if cfg.RESTAddr == "" {
		cfg.RESTAddr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" && cfg.ModelBasePath == "" && cfg.ModelConfigFile == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dial(t testing.TB, s *Server) *tfserving.Client {
	t.Helper()
	c, err := tfserving.Dial(tfserving.Config{Address: s.GRPCAddr(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// floatBatch is one DT_FLOAT input of rows x width.
func floatBatch(alias string, rows, width int, data []float32) map[string]*tensor.Tensor {
	return map[string]*tensor.Tensor{alias: {DType: tfpb.DataType_DT_FLOAT, Shape: []int64{int64(rows), int64(width)}, Float32: data}}
}

// features is a deterministic batch of rows × 32 features.
func features(rows int) []float32 {
	x := make([]float32, rows*model.Width)
	for i := range x {
		x[i] = float32((i*37)%23)/11 - 1
	}
	return x
}

// expected computes scores in-process with the shipped network.
func expected(t testing.TB, version int64, x []float32, rows int) []float32 {
	t.Helper()
	out := make([]float32, rows)
	if err := model.CTR(version).Predict(out, x, rows); err != nil {
		t.Fatal(err)
	}
	return out
}

func near(a, b float32) bool { return math.Abs(float64(a-b)) <= 1e-6 }

// copyVersion writes shipped version v as directory name dir under base.
func copyVersion(t testing.TB, base string, v int64, dir string) {
	t.Helper()
	if err := model.Save(filepath.Join(base, dir), model.CTR(v)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShippedModelOverGRPC(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	ctx := context.Background()

	md, err := c.Metadata(ctx, model.Name, tfserving.Target{})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := md.ServingDefault()
	if err != nil || md.Version != 2 || md.StandIn() {
		t.Fatalf("ServingDefault: %v, version %d, stand-in %v", err, md.Version, md.StandIn())
	}
	ins := sd.InputSpecs()
	if len(ins) != 1 || ins[0].Name != "features" || ins[0].DType != tfpb.DataType_DT_FLOAT || !slices.Equal(ins[0].Shape, []int64{-1, 32}) {
		t.Fatalf("inputs %v", ins)
	}
	in, width, out := ins[0].Name, int(ins[0].Shape[1]), "score"
	if sig := md.Signatures["serving_default"]; sig.MethodName != "tensorflow/serving/predict" || sig.Outputs["score"].Shape[1] != 1 {
		t.Fatalf("signature %+v", sig)
	}

	tests := []struct {
		name    string
		target  tfserving.Target
		version int64
		rows    int
	}{
		{"latest is v2", tfserving.Target{}, 2, 3},
		{"latest batch 64", tfserving.Target{}, 2, 64},
		{"pinned v2", tfserving.Target{Version: 2}, 2, 1},
		{"pinned v1", tfserving.Target{Version: 1}, 1, 2},
		{"label stable is v1", tfserving.Target{Label: "stable"}, 1, 2},
		{"label canary is v2", tfserving.Target{Label: "canary"}, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := features(tt.rows)
			res, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Target: tt.target, Inputs: floatBatch(in, tt.rows, width, x)})
			if err != nil {
				t.Fatal(err)
			}
			rows, err := res.Rows(out)
			if err != nil || len(rows) != tt.rows || res.Version != tt.version || res.Signature != "serving_default" {
				t.Fatalf("rows %d, version %d, err %v", len(rows), res.Version, err)
			}
			want := expected(t, tt.version, x, tt.rows)
			for i := range rows {
				if !near(rows[i][0], want[i]) {
					t.Fatalf("row %d: %v, want %v", i, rows[i][0], want[i])
				}
			}
		})
	}
	// The shipped files landed in the data dir, TF's layout.
	for _, v := range []string{"1", "2"} {
		if _, err := os.Stat(filepath.Join(s.cfg.DataDir, "models", model.Name, v, model.FileName)); err != nil {
			t.Fatal(err)
		}
	}
	// The shipped model is served whole (both versions, labelled), unlike a
	// --model-base-path, which gets TF's latest-only default.
	st, err := c.ModelStatus(ctx, model.Name)
	if err != nil || len(st) != 2 {
		t.Fatalf("shipped model serves v1 and v2: %+v %v", st, err)
	}
	for i, v := range []int64{1, 2} {
		if st[i].Version != v || st[i].State != "AVAILABLE" || st[i].ErrorCode != "OK" {
			t.Fatalf("shipped model serves v1 and v2: %+v", st)
		}
	}
}

// shippedBasePath writes the shipped model into a temp dir and returns it as
// a --model-base-path: served with TF Serving's default policy (latest only).
func shippedBasePath(t testing.TB) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), model.Name)
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	return base
}

func TestBasePathGetsLatestPolicy(t *testing.T) {
	s := startServer(t, Config{ModelBasePath: shippedBasePath(t)})
	st, err := dial(t, s).ModelStatus(context.Background(), model.Name)
	if err != nil || len(st) != 1 || st[0].Version != 2 || st[0].State != "AVAILABLE" {
		t.Fatalf("a base path gets TF's default latest policy, v2 only: %+v %v", st, err)
	}
}

// TestGoldenScores pins the served scores to the model's golden values
// (infer/model's goldenInput rows), end to end over gRPC.
func TestGoldenScores(t *testing.T) {
	s := startServer(t, Config{ModelConfigFile: writeConfig(t, t.TempDir(), `model_config_list { config {
		name: "my_model" base_path: "%s" model_version_policy { all {} } } }`)})
	c := dial(t, s)
	x := make([]float32, 4*model.Width)
	for i := range model.Width {
		x[i] = float32(i)/float32(model.Width) - 0.5
		x[2*model.Width+i] = float32(1 - 2*(i%2))
		x[3*model.Width+i] = float32((i*7)%13)/6 - 1
	}
	golden := map[int64][]float32{
		1: {0.11295025, 0.23739408, 0.20578966, 0.10962332},
		2: {0.0942166, 0.23741673, 0.089072324, 0.13028196},
	}
	for v, want := range golden {
		res, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: model.Name, Target: tfserving.Target{Version: v}, Inputs: floatBatch("features", 4, model.Width, x)})
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := res.Rows("score")
		for i := range want {
			if math.Abs(float64(rows[i][0]-want[i])) > 1e-5 {
				t.Errorf("v%d row %d: %v, golden %v", v, i, rows[i][0], want[i])
			}
		}
	}
}

// writeConfig writes a model config file whose %s is a fresh base path
// holding the shipped versions 1 and 2; it returns the file path.
func writeConfig(t testing.TB, dir, text string) string {
	t.Helper()
	base := filepath.Join(dir, "my_model")
	copyVersion(t, base, 1, "1")
	copyVersion(t, base, 2, "2")
	p := filepath.Join(dir, "models.config")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(text, base)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRestartSameAddress(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, Config{DataDir: dir})
	grpcAddr, restAddr := s.GRPCAddr(), s.RESTAddr()
	c := dial(t, s)
	pr := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 1, model.Width, features(1))}
	if _, err := c.Predict(context.Background(), pr); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Predict(context.Background(), pr); tfserving.Retryable(err) == false {
		t.Fatalf("while down: %v, want a retryable error", err)
	}
	s2 := startServer(t, Config{DataDir: dir, GRPCAddr: grpcAddr, RESTAddr: restAddr})
	if s2.GRPCAddr() != grpcAddr {
		t.Fatalf("restarted on %s, want %s", s2.GRPCAddr(), grpcAddr)
	}
	// The same client reconnects by itself.
	waitFor(t, "client to reconnect", 10*time.Second, func() bool {
		_, err := c.Predict(context.Background(), pr)
		return err == nil
	})
}

func TestPythonRequestsClient(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		skipOrFail(t, "no /usr/bin/python3")
	}
	if err := runPython("import requests"); err != nil {
		skipOrFail(t, "python3-requests is missing (apt-get install python3-requests)")
	}
	s := startServer(t, Config{})
	// The seed's consumer_inference.py request, verbatim in shape.
	script := `
import json, requests, sys
TF_SERVING_URL = "http://` + s.RESTAddr() + `/v1/models/my_model:predict"
data = {"id": "r1", "features": ` + jsonFloats(features(1)) + `}
payload = {"instances": [data["features"]]}
response = requests.post(TF_SERVING_URL, json=payload)
result = response.json()
print(response.status_code, json.dumps(result))
`
	out, err := pythonOutput(script)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	code, body, _ := strings.Cut(strings.TrimSpace(out), " ")
	var res struct{ Predictions [][]float32 }
	if code != "200" || json.Unmarshal([]byte(body), &res) != nil || len(res.Predictions) != 1 {
		t.Fatalf("python got %s", out)
	}
	if want := expected(t, 2, features(1), 1)[0]; !near(res.Predictions[0][0], want) {
		t.Fatalf("python prediction %v, want %v", res.Predictions[0][0], want)
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: install it, see make test-deps)")
	}
	t.Skip(why)
}

func jsonFloats(x []float32) string {
	parts := make([]string, len(x))
	for i, v := range x {
		parts[i] = strconv.FormatFloat(float64(v), 'g', -1, 32)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// scrape reads the Prometheus page into name{labels} -> value.
func scrape(t testing.TB, s *Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.RESTAddr() + pipeline.TFServingMetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("metrics content type %q", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func sumMetric(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if k == prefix || strings.HasPrefix(k, prefix+"{") {
			s += v
		}
	}
	return s
}
