package tfserving_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startServer runs the embedded model server on loopback port 0.
func startServer(t testing.TB, cfg modelserver.Config) *modelserver.Server {
	t.Helper()
	cfg.RESTAddr = "-"
	return stacktest.Start(t, stack.Config{Models: &cfg}).Models
}

func dialT(t testing.TB, addr string) *tfserving.Client {
	t.Helper()
	c, err := tfserving.Dial(tfserving.Config{Address: addr, Timeout: 5 * time.Second})
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

func TestClientAgainstServer(t *testing.T) {
	s := startServer(t, modelserver.Config{})
	c := dialT(t, s.GRPCAddr())
	ctx := context.Background()
	if c.Address() != s.GRPCAddr() {
		t.Fatal(c.Address())
	}

	md, err := c.Metadata(ctx, model.Name, tfserving.Target{})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := md.ServingDefault()
	if err != nil || md.Version != 2 || md.Model != model.Name || md.StandIn() {
		t.Fatalf("ServingDefault: %v (version %d, stand-in %v)", err, md.Version, md.StandIn())
	}
	ins, outs := sd.InputSpecs(), sd.OutputSpecs()
	if len(ins) != 1 || ins[0].String() != "features DT_FLOAT [-1,32]" || len(outs) != 1 || outs[0].String() != "score DT_FLOAT [-1,1]" {
		t.Fatalf("signature %v -> %v", ins, outs)
	}
	in, width, out := ins[0].Name, model.Width, outs[0].Name

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]float32, 2*width)
			data[0] = float32(g)
			res, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch(in, 2, width, data)})
			if err != nil {
				t.Error(err)
				return
			}
			rows, err := res.Rows(out)
			want := make([]float32, 2)
			_ = model.CTR(2).Predict(want, data, 2)
			if err != nil || len(rows) != 2 || rows[0][0] != want[0] || rows[1][0] != want[1] || res.Version != 2 {
				t.Errorf("rows %v want %v, err %v, version %d", rows, want, err, res.Version)
			}
		}()
	}
	wg.Wait()
	lat := c.Latency()
	if lat[2].Count != 4 || lat[2].P99 <= 0 || lat[2].Max < lat[2].P50 {
		t.Fatalf("latency %+v", lat)
	}
	if c.ResetLatency()[2].Count != 4 || c.Latency()[2].Count != 0 {
		t.Fatal("ResetLatency did not reset")
	}

	st, err := c.ModelStatus(ctx, model.Name)
	// The shipped model: both versions AVAILABLE, ascending.
	if err != nil || len(st) != 2 || st[0].Version != 1 || st[1].Version != 2 || st[1].State != "AVAILABLE" || st[1].ErrorCode != "OK" {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestClientReload(t *testing.T) {
	s := startServer(t, modelserver.Config{})
	c := dialT(t, s.GRPCAddr())
	ctx := context.Background()
	// Serve both shipped versions, then label them.
	base := t.TempDir() + "/m"
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	mc := &tfpb.ModelConfig{Name: "m", BasePath: base, ModelVersionPolicy: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy{
		PolicyChoice: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All_{All: &tfpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All{}}}}
	cfg := &tfpb.ModelServerConfig{Config: &tfpb.ModelServerConfig_ModelConfigList{ModelConfigList: &tfpb.ModelConfigList{Config: []*tfpb.ModelConfig{mc}}}}
	if err := c.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	mc.VersionLabels = map[string]int64{"stable": 1}
	if err := c.Reload(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	target, _ := tfserving.ParseTarget("stable")
	res, err := c.Predict(ctx, tfserving.PredictRequest{Model: "m", Target: target, Inputs: floatBatch("features", 1, model.Width, make([]float32, model.Width))})
	if err != nil || res.Version != 1 {
		t.Fatalf("label stable served by %v (%v)", res, err)
	}
	if c.Latency()[1].Count != 1 {
		t.Fatalf("latency keyed by the serving version: %+v", c.Latency())
	}
}

func TestClientErrors(t *testing.T) {
	s := startServer(t, modelserver.Config{})
	c := dialT(t, s.GRPCAddr())
	// A port nothing listens on: bind one, note it, close it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	down := dialT(t, dead)
	ctx := context.Background()
	good := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 1, model.Width, make([]float32, model.Width))}

	tests := []struct {
		name     string
		call     func() error
		code     codes.Code
		contains []string
	}{
		{"server down", func() error { _, err := down.Predict(ctx, good); return err }, codes.Unavailable,
			[]string{"connect to TF Serving at " + dead, "is tensorflow_model_server running? set --tfserving"}},
		{"server down, status", func() error { _, err := down.ModelStatus(ctx, model.Name); return err }, codes.Unavailable,
			[]string{"connect to TF Serving at " + dead}},
		{"unknown model", func() error { r := good; r.Model = "nope"; _, err := c.Predict(ctx, r); return err }, codes.NotFound,
			[]string{"Servable not found", `--model "nope"`}},
		{"unknown version", func() error {
			r := good
			r.Target = tfserving.Target{Version: 7}
			_, err := c.Predict(ctx, r)
			return err
		}, codes.NotFound,
			[]string{"Predict my_model v7", "Specific(my_model, 7)"}},
		{"unknown label", func() error {
			r := good
			r.Target = tfserving.Target{Label: "gold"}
			_, err := c.Predict(ctx, r)
			return err
		}, codes.InvalidArgument,
			[]string{"Unrecognized servable version label: gold"}},
		{"wrong input", func() error {
			r := good
			r.Inputs = floatBatch("x", 1, model.Width, make([]float32, model.Width))
			_, err := c.Predict(ctx, r)
			return err
		}, codes.InvalidArgument,
			[]string{"input tensor alias not found"}},
		{"wrong width", func() error {
			r := good
			r.Inputs = floatBatch("features", 4, 8, make([]float32, 32))
			_, err := c.Predict(ctx, r)
			return err
		}, codes.InvalidArgument,
			[]string{"Matrix size-incompatible"}},
		{"unknown signature", func() error { r := good; r.Signature = "x"; _, err := c.Predict(ctx, r); return err }, codes.FailedPrecondition,
			[]string{`Serving signature key "x" not found.`, "check the signature name"}},
		{"reload without model_config_list", func() error { return c.Reload(ctx, &tfpb.ModelServerConfig{}) }, codes.InvalidArgument,
			[]string{"only supports model_config_list"}},
		{"status of unknown model", func() error { _, err := c.ModelStatus(ctx, "nope"); return err }, codes.NotFound,
			[]string{"Could not find any versions of model nope"}},
		{"cancelled", func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := c.Predict(cctx, good)
			return err
		}, codes.Canceled, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.code)
			}
			var te *tfserving.Error
			if !errors.As(err, &te) {
				t.Fatalf("%T is not *Error", err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
		})
	}
	if !tfserving.Retryable(&tfserving.Error{Status: status.New(codes.Unavailable, "")}) || tfserving.Retryable(&tfserving.Error{Status: status.New(codes.InvalidArgument, "")}) {
		t.Error("Retryable")
	}
}

// The client's own checks give a *RequestError, never a gRPC status: a
// caller must be able to tell "we built a bad request" from a server's
// INVALID_ARGUMENT without reading messages. The down server proves nothing
// was sent (a sent request would fail with UNAVAILABLE).
func TestClientRefusesMalformedRequest(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	down := dialT(t, dead)
	good := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 1, model.Width, make([]float32, model.Width))}
	tests := []struct {
		name string
		mod  func(*tfserving.PredictRequest)
		want string
	}{
		{"no model", func(r *tfserving.PredictRequest) { r.Model = "" }, "set --model"},
		{"no inputs", func(r *tfserving.PredictRequest) { r.Inputs = nil }, "no inputs"},
		{"no rows", func(r *tfserving.PredictRequest) { r.Inputs = floatBatch("features", 0, 32, nil) }, `input "features" has no rows`},
		{"data short of rows x width", func(r *tfserving.PredictRequest) { r.Inputs = floatBatch("features", 3, 32, make([]float32, 32)) }, "holds 32 values, the shape needs 96"},
		{"batches disagree", func(r *tfserving.PredictRequest) {
			r.Inputs = floatBatch("features", 1, 32, make([]float32, 32))
			r.Inputs["ids"] = &tensor.Tensor{DType: tfpb.DataType_DT_INT64, Shape: []int64{2}, Int64: []int64{1, 2}}
		}, "every input needs the same batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.mod(&r)
			res, err := down.Predict(context.Background(), r)
			var re *tfserving.RequestError
			if !errors.As(err, &re) || res != nil {
				t.Fatalf("Predict = %v, %v (%T); want a *RequestError", res, err, err)
			}
			var te *tfserving.Error
			if errors.As(err, &te) || status.Code(err) == codes.InvalidArgument || tfserving.Retryable(err) {
				t.Fatalf("%v: looks like a server answer (code %v)", err, status.Code(err))
			}
			if re.Addr != dead || !strings.HasPrefix(re.Op, "Predict ") || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "not sent") {
				t.Fatalf("%q (addr %q, op %q) lacks %q", err, re.Addr, re.Op, tt.want)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	s := startServer(t, modelserver.Config{InjectLatency: 300 * time.Millisecond})
	c, err := tfserving.Dial(tfserving.Config{Address: s.GRPCAddr(), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Predict(context.Background(), tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 1, model.Width, make([]float32, model.Width))})
	if status.Code(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) || !tfserving.Retryable(err) {
		t.Fatalf("slow server: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     tfserving.Config
		wantErr string
	}{
		{"defaults", tfserving.Config{}, ""},
		{"no port", tfserving.Config{Address: "10.0.0.5"}, "want host:port"},
		{"bad port", tfserving.Config{Address: "h:99999"}, "port"},
		{"cert without key", tfserving.Config{TLS: tfserving.TLSConfig{CertFile: "/etc/hostname"}}, "go together"},
		{"missing CA", tfserving.Config{TLS: tfserving.TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "--tfserving-tls-ca-file"},
		{"negative timeout", tfserving.Config{Timeout: -time.Second}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil || tt.cfg.Address != pipeline.DefaultGRPCAddr {
					t.Fatalf("err %v, address %q", err, tt.cfg.Address)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestReconnectAfterRestart: a client outlives its server's restart on the
// same address (the worker keeps one client across model-server restarts).
func TestReconnectAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, modelserver.Config{DataDir: dir})
	addr := s.GRPCAddr()
	c := dialT(t, addr)
	req := tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 1, model.Width, make([]float32, model.Width))}
	if _, err := c.Predict(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// Several failed calls while down push gRPC's reconnect backoff up.
	for range 5 {
		if _, err := c.Predict(context.Background(), req); status.Code(err) != codes.Unavailable {
			t.Fatalf("while down: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The restart is by hand: a stack starts its parts once.
	s2, err := modelserver.Start(context.Background(), modelserver.Config{GRPCAddr: addr, RESTAddr: "-", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	// Backoff is capped at 3 s; allow generous slack for a loaded CI box.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.Predict(context.Background(), req)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client did not reconnect: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
