package modelserver

import (
	"context"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// rawClients talk to the server without our client's local checks, so
// malformed requests reach it as a foreign client would send them.
func rawClients(t *testing.T, s *Server) (tfpb.PredictionServiceClient, tfpb.ModelServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return tfpb.NewPredictionServiceClient(conn), tfpb.NewModelServiceClient(conn)
}

func spec(name string) *tfpb.ModelSpec { return &tfpb.ModelSpec{Name: name} }

// floatProto is a DT_FLOAT rows x width tensor in tensor_content, as our
// client sends it.
func floatProto(rows, width int, data []float32) *tfpb.TensorProto {
	var p tfpb.TensorProto
	if _, err := tensor.Encode(&p, &tensor.Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{int64(rows), int64(width)}, Float32: data}, nil); err != nil {
		panic(err)
	}
	return &p
}

func TestGRPCErrors(t *testing.T) {
	// A base path, not the shipped default: TF's latest policy, so v1 is
	// unloaded.
	s := startServer(t, Config{MaxMessageBytes: 1 << 20, ModelBasePath: shippedBasePath(t)})
	pc, mc := rawClients(t, s)
	ctx := context.Background()
	good := func() *tfpb.PredictRequest {
		return &tfpb.PredictRequest{ModelSpec: spec(model.Name), Inputs: map[string]*tfpb.TensorProto{"features": floatProto(2, 32, features(2))}}
	}
	with := func(f func(r *tfpb.PredictRequest)) func() error {
		return func() error { r := good(); f(r); _, err := pc.Predict(ctx, r); return err }
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"unknown model", with(func(r *tfpb.PredictRequest) { r.ModelSpec.Name = "nope" }), codes.NotFound, "Servable not found for request: Latest(nope)"},
		{"unknown version", with(func(r *tfpb.PredictRequest) {
			r.ModelSpec.VersionChoice = &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(7)}
		}), codes.NotFound, "Servable not found for request: Specific(my_model, 7)"},
		{"unloaded version (latest policy)", with(func(r *tfpb.PredictRequest) {
			r.ModelSpec.VersionChoice = &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(1)}
		}), codes.NotFound, "Specific(my_model, 1)"},
		{"unknown label", with(func(r *tfpb.PredictRequest) {
			r.ModelSpec.VersionChoice = &tfpb.ModelSpec_VersionLabel{VersionLabel: "gold"}
		}), codes.InvalidArgument, "Unrecognized servable version label: gold"},
		{"no model spec", with(func(r *tfpb.PredictRequest) { r.ModelSpec = nil }), codes.InvalidArgument, "Missing ModelSpec"},
		{"no model name", with(func(r *tfpb.PredictRequest) { r.ModelSpec.Name = "" }), codes.InvalidArgument, "ModelSpec has no name specified."},
		{"unknown signature", with(func(r *tfpb.PredictRequest) { r.ModelSpec.SignatureName = "classify" }), codes.FailedPrecondition, `Serving signature key "classify" not found.`},
		{"explicit serving_default", with(func(r *tfpb.PredictRequest) { r.ModelSpec.SignatureName = "serving_default" }), codes.OK, ""},
		{"wrong input name", with(func(r *tfpb.PredictRequest) {
			r.Inputs = map[string]*tfpb.TensorProto{"x": r.Inputs["features"]}
		}), codes.InvalidArgument, "input tensor alias not found in signature: x. Inputs expected to be in the set {features}."},
		{"two inputs", with(func(r *tfpb.PredictRequest) { r.Inputs["extra"] = r.Inputs["features"] }), codes.InvalidArgument, "input size does not match signature: 2!=1"},
		{"no inputs", with(func(r *tfpb.PredictRequest) { r.Inputs = nil }), codes.InvalidArgument, "Missing but required: {features}"},
		{"wrong width", with(func(r *tfpb.PredictRequest) { r.Inputs["features"] = floatProto(2, 31, make([]float32, 62)) }),
			codes.InvalidArgument, "Matrix size-incompatible: In[0]: [2,31], In[1]: [32,64]"},
		{"rank 1", with(func(r *tfpb.PredictRequest) {
			r.Inputs["features"] = &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: tensor.ShapeProto(32), FloatVal: make([]float32, 32)}
		}), codes.InvalidArgument, "In[0] is not a matrix. Instead it has shape [32]"},
		{"wrong dtype", with(func(r *tfpb.PredictRequest) {
			r.Inputs["features"] = &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT64, TensorShape: tensor.ShapeProto(1, 32), Int64Val: make([]int64, 32)}
		}), codes.InvalidArgument, "Expects arg[0] to be float but int64 is provided"},
		{"tensor_content wrong size", with(func(r *tfpb.PredictRequest) {
			r.Inputs["features"].TensorContent = r.Inputs["features"].TensorContent[:100]
		}),
			codes.InvalidArgument, "tensor parsing error: features"},
		{"negative shape", with(func(r *tfpb.PredictRequest) { r.Inputs["features"].TensorShape = tensor.ShapeProto(-1, 32) }),
			codes.InvalidArgument, "tensor parsing error: features"},
		{"huge claimed shape", with(func(r *tfpb.PredictRequest) {
			r.Inputs["features"] = &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: tensor.ShapeProto(1<<40, 32), FloatVal: []float32{1}}
		}), codes.InvalidArgument, "tensor parsing error: features"},
		{"tiny message, huge filled shape", with(func(r *tfpb.PredictRequest) {
			r.Inputs["features"] = &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: tensor.ShapeProto(1<<24, 32), FloatVal: []float32{1}}
		}), codes.InvalidArgument, "tensor parsing error: features"},
		{"unknown output filter", with(func(r *tfpb.PredictRequest) { r.OutputFilter = []string{"logits"} }), codes.InvalidArgument, "output tensor alias not found in signature: logits"},
		{"duplicate output filter", with(func(r *tfpb.PredictRequest) { r.OutputFilter = []string{"score", "score"} }), codes.InvalidArgument, "duplicate output tensor alias: score"},
		{"oversized message", with(func(r *tfpb.PredictRequest) {
			r.Inputs["features"] = floatProto(10000, 32, make([]float32, 320000))
		}),
			codes.ResourceExhausted, "larger than max"},
		{"metadata without field", func() error {
			_, err := pc.GetModelMetadata(ctx, &tfpb.GetModelMetadataRequest{ModelSpec: spec(model.Name)})
			return err
		}, codes.InvalidArgument, "GetModelMetadataRequest must specify at least one metadata_field"},
		{"metadata unknown field", func() error {
			_, err := pc.GetModelMetadata(ctx, &tfpb.GetModelMetadataRequest{ModelSpec: spec(model.Name), MetadataField: []string{"graph"}})
			return err
		}, codes.InvalidArgument, "Metadata field graph is not supported"},
		{"metadata unknown model", func() error {
			_, err := pc.GetModelMetadata(ctx, &tfpb.GetModelMetadataRequest{ModelSpec: spec("nope"), MetadataField: []string{"signature_def"}})
			return err
		}, codes.NotFound, "Servable not found for request: Latest(nope)"},
		{"status unknown model", func() error {
			_, err := mc.GetModelStatus(ctx, &tfpb.GetModelStatusRequest{ModelSpec: spec("nope")})
			return err
		},
			codes.NotFound, "Could not find any versions of model nope"},
		{"status unknown version", func() error {
			_, err := mc.GetModelStatus(ctx, &tfpb.GetModelStatusRequest{ModelSpec: &tfpb.ModelSpec{Name: model.Name, VersionChoice: &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(9)}}})
			return err
		}, codes.NotFound, "Could not find version 9 of model my_model"},
		{"status without spec", func() error { _, err := mc.GetModelStatus(ctx, &tfpb.GetModelStatusRequest{}); return err },
			codes.InvalidArgument, "Missing ModelSpec"},
		{"long message truncated", with(func(r *tfpb.PredictRequest) { r.ModelSpec.Name = strings.Repeat("m", 2000) }),
			codes.NotFound, "...TRUNCATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st := status.Convert(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Fatalf("got %v: %q; want %v containing %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			if len(st.Message()) > maxMessage+len("...TRUNCATED") {
				t.Fatalf("message of %d bytes not truncated", len(st.Message()))
			}
		})
	}
	// Every failure was counted under its code, and the server still serves.
	m := scrape(t, s)
	if m[`:tensorflow:serving:request_count{model_name="my_model",status="INVALID_ARGUMENT"}`] < 10 ||
		m[`:tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"}`] != 1 {
		t.Fatalf("request_count by status: %v", m)
	}
	if _, err := pc.Predict(ctx, good()); err != nil {
		t.Fatal(err)
	}
}
