package modelserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// stateOf returns version -> state from the client's ModelStatus.
func stateOf(t testing.TB, c *tfserving.Client, name string) map[int64]string {
	t.Helper()
	st, err := c.ModelStatus(context.Background(), name)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil
		}
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, v := range st {
		out[v.Version] = v.State
	}
	return out
}

func TestPollingNewAndRemovedVersions(t *testing.T) {
	base := filepath.Join(t.TempDir(), "m")
	copyVersion(t, base, 1, "1")
	// Not versions: a non-numeric dir and a stray file are ignored.
	copyVersion(t, base, 2, "tmp")
	if err := os.WriteFile(filepath.Join(base, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	poll := 200 * time.Millisecond
	s := startServer(t, Config{ModelName: "m", ModelBasePath: base, PollWait: poll})
	c := dial(t, s)
	if got := stateOf(t, c, "m"); len(got) != 1 || got[1] != "AVAILABLE" {
		t.Fatalf("start: %v", got)
	}

	// 00000003 is version 3 (TF parses the whole name as an int64).
	copyVersion(t, base, 2, "00000003")
	waitFor(t, "version 3 AVAILABLE and 1 END", 3*poll+2*time.Second, func() bool {
		st := stateOf(t, c, "m")
		return st[3] == "AVAILABLE" && st[1] == "END"
	})
	res, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: "m", Inputs: floatBatch("features", 1, 32, features(1))})
	if err != nil || res.Version != 3 {
		t.Fatalf("latest after poll: %v %v", res, err)
	}

	// Removing the newest version brings 1 back and ends 3.
	if err := os.RemoveAll(filepath.Join(base, "00000003")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 3 END and 1 AVAILABLE again", 3*poll+2*time.Second, func() bool {
		st := stateOf(t, c, "m")
		return st[3] == "END" && st[1] == "AVAILABLE"
	})

	// A broken version ends with its load error and does not take 1 down.
	if err := os.MkdirAll(filepath.Join(base, "4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "4", model.FileName), []byte("IOPSNN01garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 4 to fail", 3*poll+2*time.Second, func() bool {
		st, _ := c.ModelStatus(context.Background(), "m")
		for _, v := range st {
			if v.Version == 4 && v.State == "END" && v.ErrorCode == "INVALID_ARGUMENT" && strings.Contains(v.ErrorMessage, "checksum") {
				return true
			}
		}
		return false
	})
	if st := stateOf(t, c, "m"); st[1] != "AVAILABLE" {
		t.Fatalf("version 1 lost while 4 failed: %v", st)
	}
	m := scrape(t, s)
	if sumMetric(m, ":tensorflow:cc:saved_model:load_attempt_count") < 4 ||
		m[`:tensorflow:cc:saved_model:load_attempt_count{model_path="`+filepath.Join(base, "4")+`",status="fail"}`] != 1 {
		t.Fatalf("load attempts not counted (a failed version is retried only when its file changes)")
	}

	// Removing every version ends the last one too.
	for _, d := range []string{"1", "4"} {
		if err := os.RemoveAll(filepath.Join(base, d)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "version 1 END", 3*poll+2*time.Second, func() bool { return stateOf(t, c, "m")[1] == "END" })
	_, err = c.Predict(context.Background(), tfserving.PredictRequest{Model: "m", Inputs: floatBatch("features", 1, 32, features(1))})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("predict with no versions: %v", err)
	}
}

func reloadCfg(configs ...*tfpb.ModelConfig) *tfpb.ModelServerConfig {
	return &tfpb.ModelServerConfig{Config: &tfpb.ModelServerConfig_ModelConfigList{ModelConfigList: &tfpb.ModelConfigList{Config: configs}}}
}

func specific(vs ...int64) *tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy {
	return &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy{PolicyChoice: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_Specific_{
		Specific: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_Specific{Versions: vs}}}
}

func TestReloadConfigAndLabels(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "my_model")
	copyVersion(t, base, 1, "1")
	copyVersion(t, base, 2, "2")
	s := startServer(t, Config{ModelBasePath: base, PollWait: 100 * time.Millisecond})
	c := dial(t, s)
	ctx := context.Background()
	predictVersion := func(target tfserving.Target) (int64, error) {
		res, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Target: target, Inputs: floatBatch("features", 1, 32, features(1))})
		if err != nil {
			return 0, err
		}
		return res.Version, nil
	}
	mc := func(policy *tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy, labels map[string]int64) *tfpb.ModelConfig {
		return &tfpb.ModelConfig{Name: model.Name, BasePath: base, ModelPlatform: "tensorflow", ModelVersionPolicy: policy, VersionLabels: labels}
	}

	// Step 1: a label at version 1, which is not loaded yet: refused.
	err := c.Reload(ctx, reloadCfg(mc(specific(1, 2), map[string]int64{"stable": 1})))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(),
		"Request to assign label to version 1 of model my_model, which is not currently available for inference") {
		t.Fatalf("label on unavailable version: %v", err)
	}
	// Step 2: first load the version ...
	if err := c.Reload(ctx, reloadCfg(mc(specific(1, 2), nil))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 1 AVAILABLE", 5*time.Second, func() bool { return stateOf(t, c, model.Name)[1] == "AVAILABLE" })
	// ... then point labels at it (two labels may share a version).
	if err := c.Reload(ctx, reloadCfg(mc(specific(1, 2), map[string]int64{"stable": 1, "canary": 2, "blue": 2}))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		target tfserving.Target
		want   int64
	}{
		{tfserving.Target{Label: "stable"}, 1},
		{tfserving.Target{Label: "canary"}, 2},
		{tfserving.Target{Version: 1}, 1},
		{tfserving.Target{}, 2},
	} {
		if v, err := predictVersion(tt.target); err != nil || v != tt.want {
			t.Errorf("%s served by %d (%v), want %d", tt.target, v, err, tt.want)
		}
	}
	if _, err := predictVersion(tfserving.Target{Label: "gold"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown label: %v", err)
	}
	labels := func() map[string]int64 { _, l, _ := s.ModelVersions(model.Name); return l }
	if l := labels(); l["stable"] != 1 || l["canary"] != 2 || len(l) != 3 {
		t.Fatalf("labels %v", l)
	}

	// Bad configs are refused whole, with TF's codes.
	bad := []struct {
		name string
		cfg  *tfpb.ModelServerConfig
		code codes.Code
		msg  string
	}{
		{"not a model_config_list", &tfpb.ModelServerConfig{}, codes.InvalidArgument, "only supports model_config_list"},
		{"duplicate names", reloadCfg(mc(nil, nil), mc(nil, nil)), codes.InvalidArgument, "multiple times"},
		{"relative base path", reloadCfg(&tfpb.ModelConfig{Name: "x", BasePath: "models/x"}), codes.InvalidArgument, "absolute path"},
		{"platform change", reloadCfg(&tfpb.ModelConfig{Name: model.Name, BasePath: base, ModelPlatform: "pytorch"}), codes.InvalidArgument, "platform"},
		{"bad label name", reloadCfg(mc(nil, map[string]int64{"no-dash": 2})), codes.InvalidArgument, "[a-zA-Z0-9_]+"},
		{"moving a label to an unavailable version", reloadCfg(mc(specific(1, 2), map[string]int64{"stable": 3})), codes.FailedPrecondition, "version 3"},
		{"empty specific policy", reloadCfg(mc(specific(), nil)), codes.InvalidArgument, "no versions"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Reload(ctx, tt.cfg)
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v with %q", err, tt.code, tt.msg)
			}
		})
	}
	if l := labels(); l["stable"] != 1 {
		t.Fatalf("a refused reload changed labels: %v", l)
	}

	// Policy change through reload: latest keeps only 2; labels dropped.
	if err := c.Reload(ctx, reloadCfg(mc(nil, nil))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 1 END after policy change", 5*time.Second, func() bool { return stateOf(t, c, model.Name)[1] == "END" })
	if _, err := predictVersion(tfserving.Target{Label: "stable"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("dropped label still resolves: %v", err)
	}

	// A new model in a reload is AVAILABLE when the call returns; the model
	// left out of the list is unloaded (its versions stay as END).
	other := filepath.Join(dir, "other")
	copyVersion(t, other, 1, "5")
	if err := c.Reload(ctx, reloadCfg(&tfpb.ModelConfig{Name: "other", BasePath: other})); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, c, "other"); st[5] != "AVAILABLE" {
		t.Fatalf("new model after reload: %v", st)
	}
	if st := stateOf(t, c, model.Name); st[2] != "END" {
		t.Fatalf("dropped model: %v", st)
	}
	if _, err := predictVersion(tfserving.Target{}); status.Code(err) != codes.NotFound {
		t.Fatalf("dropped model still serves: %v", err)
	}
}

func TestModelConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfgFile := writeConfig(t, dir, `
# TF Serving's text format; base_path may also be relative to this file.
model_config_list {
  config {
    name: "my_model"
    base_path: "%s"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config { name: "rel" base_path: "my_model" }
}`)
	s := startServer(t, Config{ModelConfigFile: cfgFile})
	c := dial(t, s)
	if st := stateOf(t, c, model.Name); st[1] != "AVAILABLE" || st[2] != "AVAILABLE" {
		t.Fatalf("specific policy: %v", st)
	}
	if st := stateOf(t, c, "rel"); st[2] != "AVAILABLE" || len(st) != 1 {
		t.Fatalf("relative base path: %v", st)
	}
	res, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: model.Name, Target: tfserving.Target{Label: "stable"}, Inputs: floatBatch("features", 1, 32, features(1))})
	if err != nil || res.Version != 1 {
		t.Fatalf("label from config file: %v %v", res, err)
	}
	// The same through REST paths with versions and labels.
	base := "http://" + s.RESTAddr() + "/v1/models/my_model"
	for _, tt := range []struct{ method, path, body, want string }{
		{"POST", "/labels/stable:predict", `{"instances": [` + jsonFloats(features(1)) + `]}`, `"predictions"`},
		{"GET", "/labels/canary/metadata", "", `"version": "2"`},
		{"GET", "/versions/1/metadata", "", `"version": "1"`},
		{"GET", "/versions/1", "", `"state": "AVAILABLE"`},
	} {
		code, body, _ := httpDo(t, tt.method, base+tt.path, tt.body, nil)
		if code != 200 || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, code, body)
		}
	}

	// Startup refuses bad files with the flag named.
	badCases := []struct{ name, text, msg string }{
		{"not prototext", `model_config_list { config { name: `, "--model-config-file"},
		{"label on missing version", `model_config_list { config { name: "m" base_path: "%s" version_labels { key: "x" value: 9 } } }`, "version 9"},
	}
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, t.TempDir(), tt.text)
			_, err := Start(context.Background(), Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "127.0.0.1:0", ModelConfigFile: p})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Start = %v, want error with %q", err, tt.msg)
			}
		})
	}
}

func TestBatchingMergesConcurrentRequests(t *testing.T) {
	bp := filepath.Join(t.TempDir(), "batching.txt")
	// TF's text format; a long timeout makes merging certain on a slow CI box.
	if err := os.WriteFile(bp, []byte(`max_batch_size { value: 64 } batch_timeout_micros { value: 50000 }
		max_enqueued_batches { value: 100 } num_batch_threads { value: 2 } allowed_batch_sizes: 8 allowed_batch_sizes: 64`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Config{EnableBatching: true, BatchingParametersFile: bp})
	if s.cfg.Batching.BatchTimeout != 50*time.Millisecond || s.cfg.Batching.MaxBatchSize != 64 {
		t.Fatalf("batching file not applied: %+v", s.cfg.Batching)
	}
	c := dial(t, s)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := features(2)
			x[0] = float32(i) // each request distinct, to check results are not mixed up
			res, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 2, 32, x)})
			if err != nil {
				errs <- err
				return
			}
			rows, _ := res.Rows("score")
			want := expected(t, 2, x, 2)
			if !near(rows[0][0], want[0]) || !near(rows[1][0], want[1]) {
				errs <- status.Errorf(codes.Internal, "request %d got %v, want %v", i, rows, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m := scrape(t, s)
	runs := m[":tensorflow:serving:batching_session:wrapped_run_count"]
	batches := m[":tensorflow:serving:batching_session:processed_batch_size_count"]
	rows := m[":tensorflow:serving:batching_session:input_batch_size_sum"]
	if runs != n || rows != 2*n {
		t.Fatalf("wrapped runs %v (want %d), input rows %v", runs, n, rows)
	}
	if batches >= n || batches < 1 {
		t.Fatalf("%v batches for %d concurrent requests: nothing was merged", batches, n)
	}
	// Padding to allowed_batch_sizes is visible too.
	if sumMetric(m, ":tensorflow:serving:batching_session:padding_size_count") != batches {
		t.Fatal("padding not recorded per batch")
	}
	t.Logf("%d requests ran in %v batches", n, batches)

	// Oversized requests: TF's error unless splitting is on.
	_, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 65, 32, features(65))})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "larger than maximum input batch size 64") {
		t.Fatalf("oversized batch: %v", err)
	}
}

func TestBatchingSplitsLargeRequests(t *testing.T) {
	s := startServer(t, Config{EnableBatching: true, Batching: BatchingParameters{MaxBatchSize: 8, EnableLargeBatchSplitting: true}})
	c := dial(t, s)
	x := features(20)
	res, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 20, 32, x)})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := res.Rows("score")
	want := expected(t, 2, x, 20)
	for i := range want {
		if !near(rows[i][0], want[i]) {
			t.Fatalf("row %d: %v want %v", i, rows[i][0], want[i])
		}
	}
	if b := scrape(t, s)[":tensorflow:serving:batching_session:processed_batch_size_count"]; b != 3 {
		t.Fatalf("20 rows at max 8 ran as %v batches, want 3", b)
	}
}

func TestNoBatchingMetricsWhenOff(t *testing.T) {
	s := startServer(t, Config{})
	for k := range scrape(t, s) {
		if strings.Contains(k, "batching_session") {
			t.Fatalf("batching metric %s without --enable-batching (doctor reads its presence as 'on')", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"bad grpc addr", Config{GRPCAddr: "8500"}, "--grpc-addr"},
		{"same ports", Config{GRPCAddr: "127.0.0.1:9000", RESTAddr: "127.0.0.1:9000"}, "must differ"},
		{"file without batching", Config{BatchingParametersFile: "/x"}, "needs --enable-batching"},
		{"missing batching file", Config{EnableBatching: true, BatchingParametersFile: "/nonexistent"}, "--batching-parameters-file"},
		{"config file and base path", Config{ModelConfigFile: "/a", ModelBasePath: "/b"}, "exclude each other"},
		{"allowed sizes not ending at max", Config{Batching: BatchingParameters{AllowedBatchSizes: []int{8, 32}}}, "last must equal"},
		{"negative latency", Config{InjectLatency: -time.Second}, "--inject-latency"},
		{"key without cert", Config{TLS: ServerTLS{KeyFile: "k"}}, "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Validate = %v, want %q", err, tt.msg)
			}
		})
	}
	var ok Config
	ok.SetDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := Start(context.Background(), Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "127.0.0.1:0", ModelBasePath: "/nonexistent/m"}); err == nil ||
		!strings.Contains(err.Error(), "--model-base-path") {
		t.Fatalf("missing base path: %v", err)
	}
}

func TestAllowLabelsForUnavailableModels(t *testing.T) {
	base := filepath.Join(t.TempDir(), "my_model")
	copyVersion(t, base, 1, "1")
	copyVersion(t, base, 2, "2")
	s := startServer(t, Config{ModelBasePath: base, AllowVersionLabelsForUnavailableModels: true})
	c := dial(t, s)
	ctx := context.Background()
	mc := func(labels map[string]int64) *tfpb.ModelServerConfig {
		return reloadCfg(&tfpb.ModelConfig{Name: model.Name, BasePath: base, ModelVersionPolicy: specific(1, 2), VersionLabels: labels})
	}
	// A new label may point at version 1 before it loads ...
	if err := c.Reload(ctx, mc(map[string]int64{"stable": 2, "next": 1})); err != nil {
		t.Fatal(err)
	}
	// ... but moving an existing label still needs an AVAILABLE target.
	if err := c.Reload(ctx, mc(map[string]int64{"stable": 3, "next": 1})); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("moving a label to a missing version: %v", err)
	}
	waitFor(t, "version 1 AVAILABLE", 5*time.Second, func() bool { return stateOf(t, c, model.Name)[1] == "AVAILABLE" })
	res, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Target: tfserving.Target{Label: "next"}, Inputs: floatBatch("features", 1, 32, features(1))})
	if err != nil || res.Version != 1 {
		t.Fatalf("label next: %v %v", res, err)
	}
}
