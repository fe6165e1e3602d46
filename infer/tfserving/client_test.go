package tfserving

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// standIn is a minimal TF Serving over real gRPC/TCP so the client is tested
// before infer/modelserver exists; the server's own tests then drive this
// client against the real thing.
type standIn struct {
	tfpb.UnimplementedPredictionServiceServer
	tfpb.UnimplementedModelServiceServer
}

func (standIn) Predict(_ context.Context, r *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	if r.GetModelSpec().GetName() != "m" {
		return nil, status.Errorf(codes.NotFound, "Servable not found for request: Latest(%s)", r.GetModelSpec().GetName())
	}
	in, ok := r.Inputs["features"]
	if !ok || len(r.Inputs) != 1 {
		return nil, status.Error(codes.InvalidArgument, "input tensor alias not found in signature")
	}
	t, err := DecodeTensor(in)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "tensor parsing error: features")
	}
	rows, _ := t.Rows()
	sums := make([]float32, len(rows))
	for i, row := range rows {
		for _, v := range row {
			sums[i] += v
		}
	}
	return &tfpb.PredictResponse{
		ModelSpec: &tfpb.ModelSpec{Name: "m", VersionChoice: &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(2)}, SignatureName: "serving_default"},
		Outputs: map[string]*tfpb.TensorProto{"score": {
			Dtype: tfpb.DataType_DT_FLOAT, TensorShape: ShapeProto(int64(len(rows)), 1), FloatVal: sums,
		}},
	}, nil
}

func (standIn) GetModelMetadata(context.Context, *tfpb.GetModelMetadataRequest) (*tfpb.GetModelMetadataResponse, error) {
	defs, _ := anypb.New(&tfpb.SignatureDefMap{SignatureDef: map[string]*tfpb.SignatureDef{
		"serving_default": {
			MethodName: "tensorflow/serving/predict",
			Inputs:     map[string]*tfpb.TensorInfo{"features": {Encoding: &tfpb.TensorInfo_Name{Name: "features:0"}, Dtype: tfpb.DataType_DT_FLOAT, TensorShape: ShapeProto(-1, 4)}},
			Outputs:    map[string]*tfpb.TensorInfo{"score": {Encoding: &tfpb.TensorInfo_Name{Name: "score:0"}, Dtype: tfpb.DataType_DT_FLOAT, TensorShape: ShapeProto(-1, 1)}},
		},
	}})
	return &tfpb.GetModelMetadataResponse{
		ModelSpec: &tfpb.ModelSpec{Name: "m", VersionChoice: &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(2)}},
		Metadata:  map[string]*anypb.Any{"signature_def": defs},
	}, nil
}

func (standIn) GetModelStatus(context.Context, *tfpb.GetModelStatusRequest) (*tfpb.GetModelStatusResponse, error) {
	return &tfpb.GetModelStatusResponse{ModelVersionStatus: []*tfpb.ModelVersionStatus{
		{Version: 2, State: tfpb.ModelVersionStatus_AVAILABLE, Status: &tfpb.StatusProto{}},
		{Version: 1, State: tfpb.ModelVersionStatus_END, Status: &tfpb.StatusProto{}},
	}}, nil
}

func (standIn) HandleReloadConfigRequest(_ context.Context, r *tfpb.ReloadConfigRequest) (*tfpb.ReloadConfigResponse, error) {
	if r.GetConfig().GetModelConfigList() == nil {
		return nil, status.Error(codes.InvalidArgument, "ServerCore::HandleReloadConfigRequest only supports model_config_list")
	}
	return &tfpb.ReloadConfigResponse{Status: &tfpb.StatusProto{}}, nil
}

func startStandIn(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	tfpb.RegisterPredictionServiceServer(s, standIn{})
	tfpb.RegisterModelServiceServer(s, standIn{})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dialT(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := Dial(Config{Address: addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClientAgainstServer(t *testing.T) {
	c := dialT(t, startStandIn(t))
	ctx := context.Background()

	md, err := c.Metadata(ctx, "m", Target{})
	if err != nil {
		t.Fatal(err)
	}
	in, width, out, err := md.DefaultInput()
	if err != nil || in != "features" || width != 4 || out != "score" || md.Version != 2 {
		t.Fatalf("DefaultInput = %q %d %q %v (version %d)", in, width, out, err, md.Version)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := []float32{1, 2, 3, 4, float32(g), 0, 0, 0}
			res, err := c.Predict(ctx, PredictRequest{Model: "m", Target: Target{Label: "stable"}, Input: in, Rows: 2, Width: width, Data: data})
			if err != nil {
				t.Error(err)
				return
			}
			rows, err := res.Rows(out)
			if err != nil || len(rows) != 2 || rows[0][0] != 10 || rows[1][0] != float32(g) || res.Version != 2 {
				t.Errorf("rows %v err %v version %d", rows, err, res.Version)
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

	st, err := c.ModelStatus(ctx, "m")
	if err != nil || len(st) != 2 || st[0].Version != 1 || st[0].State != "END" || st[1].State != "AVAILABLE" || st[1].ErrorCode != "OK" {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := c.Reload(ctx, &tfpb.ModelServerConfig{Config: &tfpb.ModelServerConfig_ModelConfigList{ModelConfigList: &tfpb.ModelConfigList{}}}); err != nil {
		t.Fatal(err)
	}
}

func TestClientErrors(t *testing.T) {
	c := dialT(t, startStandIn(t))
	// A port nothing listens on: bind one, note it, close it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	down := dialT(t, dead)
	ctx := context.Background()
	good := PredictRequest{Model: "m", Input: "features", Rows: 1, Width: 2, Data: []float32{1, 2}}

	tests := []struct {
		name     string
		call     func() error
		code     codes.Code
		contains []string
	}{
		{"server down", func() error { _, err := down.Predict(ctx, good); return err }, codes.Unavailable,
			[]string{"connect to TF Serving at " + dead, "is tensorflow_model_server running? set --tfserving"}},
		{"unknown model", func() error { r := good; r.Model = "nope"; _, err := c.Predict(ctx, r); return err }, codes.NotFound,
			[]string{"Servable not found", "--model \"nope\""}},
		{"wrong input", func() error { r := good; r.Input = "x"; _, err := c.Predict(ctx, r); return err }, codes.InvalidArgument,
			[]string{"input tensor alias"}},
		{"bad batch caught locally", func() error { r := good; r.Rows = 3; _, err := c.Predict(ctx, r); return err }, codes.InvalidArgument,
			[]string{"3 rows x 2 need 6"}},
		{"reload without model_config_list", func() error { return c.Reload(ctx, &tfpb.ModelServerConfig{}) }, codes.InvalidArgument,
			[]string{"only supports model_config_list"}},
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
			var te *Error
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
	if !Retryable(&Error{Status: status.New(codes.Unavailable, "")}) || Retryable(&Error{Status: status.New(codes.InvalidArgument, "")}) {
		t.Error("Retryable")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{}, ""},
		{"no port", Config{Address: "10.0.0.5"}, "want host:port"},
		{"bad port", Config{Address: "h:99999"}, "port"},
		{"cert without key", Config{TLS: TLSConfig{CertFile: "/etc/hostname"}}, "go together"},
		{"missing CA", Config{TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "--tfserving-tls-ca-file"},
		{"negative timeout", Config{Timeout: -time.Second}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil || tt.cfg.Address != DefaultAddress {
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
