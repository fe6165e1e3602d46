package tfpb

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestWireNames pins the names and numbers that make us wire-compatible with
// TF Serving: a typo in our hand-written .proto files would otherwise only
// show up against a real tensorflow_model_server.
func TestWireNames(t *testing.T) {
	fields := []struct {
		msg    proto.Message
		full   protoreflect.FullName
		field  protoreflect.Name
		number protoreflect.FieldNumber
	}{
		{&ModelSpec{}, "tensorflow.serving.ModelSpec", "version", 2},
		{&ModelSpec{}, "tensorflow.serving.ModelSpec", "version_label", 4},
		{&ModelSpec{}, "tensorflow.serving.ModelSpec", "signature_name", 3},
		{&PredictRequest{}, "tensorflow.serving.PredictRequest", "output_filter", 3},
		{&PredictResponse{}, "tensorflow.serving.PredictResponse", "model_spec", 2},
		{&TensorProto{}, "tensorflow.TensorProto", "tensor_content", 4},
		{&TensorProto{}, "tensorflow.TensorProto", "uint64_val", 17},
		{&TensorShapeProto{}, "tensorflow.TensorShapeProto", "dim", 2},
		{&TensorInfo{}, "tensorflow.TensorInfo", "tensor_shape", 3},
		{&SignatureDef{}, "tensorflow.SignatureDef", "method_name", 3},
		{&SignatureDefMap{}, "tensorflow.serving.SignatureDefMap", "signature_def", 1},
		{&GetModelMetadataResponse{}, "tensorflow.serving.GetModelMetadataResponse", "metadata", 2},
		{&ModelVersionStatus{}, "tensorflow.serving.ModelVersionStatus", "status", 3},
		{&ModelConfig{}, "tensorflow.serving.ModelConfig", "version_labels", 8},
		{&ModelConfig{}, "tensorflow.serving.ModelConfig", "model_version_policy", 7},
		{&FileSystemStoragePathSourceConfig_ServableVersionPolicy{}, "tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy", "specific", 102},
		{&BatchingParameters{}, "tensorflow.serving.BatchingParameters", "max_execution_batch_size", 9},
	}
	for _, f := range fields {
		d := f.msg.ProtoReflect().Descriptor()
		if d.FullName() != f.full {
			t.Errorf("%T: full name %s, want %s", f.msg, d.FullName(), f.full)
		}
		fd := d.Fields().ByName(f.field)
		if fd == nil || fd.Number() != f.number {
			t.Errorf("%s.%s: want field number %d, got %v", f.full, f.field, f.number, fd)
		}
	}
	if got := ModelVersionStatus_AVAILABLE.Number(); got != 30 {
		t.Errorf("AVAILABLE = %d, want 30", got)
	}
	if got := Code_FAILED_PRECONDITION.Descriptor().FullName(); got != "tensorflow.error.Code" {
		t.Errorf("error code enum %s", got)
	}
	if PredictionService_Predict_FullMethodName != "/tensorflow.serving.PredictionService/Predict" ||
		ModelService_HandleReloadConfigRequest_FullMethodName != "/tensorflow.serving.ModelService/HandleReloadConfigRequest" {
		t.Error("RPC paths differ from TF Serving's")
	}
}

// TestSignatureDefMapAny checks the Any type URL TF Serving clients unpack.
func TestSignatureDefMapAny(t *testing.T) {
	a, err := anypb.New(&SignatureDefMap{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "type.googleapis.com/tensorflow.serving.SignatureDefMap"; a.TypeUrl != want {
		t.Fatalf("type URL %q, want %q", a.TypeUrl, want)
	}
}

// TestModelSpecBytes compares a hand-encoded ModelSpec with ours, so the
// numbers are checked against the wire itself and not only the descriptor.
func TestModelSpecBytes(t *testing.T) {
	b, err := proto.Marshal(&ModelSpec{Name: "m", VersionChoice: &ModelSpec_Version{Version: wrapperspb.Int64(2)}, SignatureName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	// name=1 "m"; version=2 {value=1: 2}; signature_name=3 "s", in any order.
	want := map[protowire.Number]string{1: "m", 2: "\x08\x02", 3: "s"}
	got := map[protowire.Number]string{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			t.Fatalf("unexpected tag in % x", b)
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			t.Fatalf("bad length in % x", b)
		}
		got[num] = string(v)
		b = b[n+m:]
	}
	if len(got) != len(want) {
		t.Fatalf("fields %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %d = %q, want %q", k, got[k], v)
		}
	}
}
