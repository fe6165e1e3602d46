package modelserver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	signatureName = "serving_default"
	predictMethod = "tensorflow/serving/predict"
)

// signature is the SignatureDef our models expose, derived from the file.
func signature(m *model.Model) *tfpb.SignatureDef {
	info := func(alias string, width int) *tfpb.TensorInfo {
		return &tfpb.TensorInfo{
			Encoding:    &tfpb.TensorInfo_Name{Name: alias + ":0"},
			Dtype:       tfpb.DataType_DT_FLOAT,
			TensorShape: tensor.ShapeProto(-1, int64(width)),
		}
	}
	return &tfpb.SignatureDef{
		MethodName: predictMethod,
		Inputs:     map[string]*tfpb.TensorInfo{m.Input: info(m.Input, m.InputWidth())},
		Outputs:    map[string]*tfpb.TensorInfo{m.Output: info(m.Output, m.OutputWidth())},
	}
}

// checkSignature resolves the signature name (FAILED_PRECONDITION, as
// gRPC Predict in TF; REST maps it to 400 too).
func checkSignature(name string) error {
	if name != "" && name != signatureName {
		return status.Errorf(codes.FailedPrecondition, "Serving signature key \"%s\" not found.", name)
	}
	return nil
}

// checkInputs applies TF's alias rules to the request's input names.
func checkInputs(m *model.Model, names []string) error {
	sort.Strings(names)
	if len(names) != 1 {
		var extra []string
		missing := m.Input
		for _, n := range names {
			if n == m.Input {
				missing = ""
			} else {
				extra = append(extra, n)
			}
		}
		return status.Errorf(codes.InvalidArgument,
			"input size does not match signature: %d!=1 len({%s}) != len({%s}). Sent extra: {%s}. Missing but required: {%s}.",
			len(names), strings.Join(names, ","), m.Input, strings.Join(extra, ","), missing)
	}
	if names[0] != m.Input {
		return status.Errorf(codes.InvalidArgument,
			"input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", names[0], m.Input)
	}
	return nil
}

// checkOutputFilter applies TF's output_filter rules.
func checkOutputFilter(m *model.Model, filter []string) error {
	seen := map[string]bool{}
	for _, f := range filter {
		if f != m.Output {
			return status.Errorf(codes.InvalidArgument,
				"output tensor alias not found in signature: %s Outputs expected to be in the set {%s}.", f, m.Output)
		}
		if seen[f] {
			return status.Errorf(codes.InvalidArgument, "duplicate output tensor alias: %s", f)
		}
		seen[f] = true
	}
	return nil
}

// checkTensor is what TF's MatMul kernel would say about the input: the
// dtype must be float and the shape [N, D]. (TF 2.12 itself does not compare
// shapes with the signature; the kernel rejects them, as we do here.)
func checkTensor(m *model.Model, t *tensor.Tensor) (rows int, err error) {
	if t.DType != tfpb.DataType_DT_FLOAT {
		return 0, status.Errorf(codes.InvalidArgument, "Expects arg[0] to be float but %s is provided", dtypeName(t.DType))
	}
	if len(t.Shape) != 2 {
		return 0, status.Errorf(codes.InvalidArgument, "In[0] is not a matrix. Instead it has shape %s", shapeString(t.Shape))
	}
	if t.Shape[1] != int64(m.InputWidth()) {
		l := m.Layers[0]
		return 0, status.Errorf(codes.InvalidArgument, "Matrix size-incompatible: In[0]: %s, In[1]: [%d,%d]", shapeString(t.Shape), l.In, l.Out)
	}
	return int(t.Shape[0]), nil
}

// dtypeName is TF's short name in kernel messages: DT_INT64 -> int64.
func dtypeName(d tfpb.DataType) string {
	return strings.ToLower(strings.TrimPrefix(d.String(), "DT_"))
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// compute runs rows through a servable, via the batcher when batching is
// on, after the fault-injection delay.
func (s *Server) compute(ctx context.Context, sv *servable, api string, x []float32, rows int) ([]float32, error) {
	if s.cfg.InjectLatency > 0 {
		t := time.NewTimer(s.cfg.InjectLatency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	out := make([]float32, rows*sv.model.OutputWidth())
	if rows == 0 {
		return out, nil
	}
	start := time.Now()
	var err error
	if s.batcher != nil {
		err = s.batcher.submit(ctx, sv.model, x, out, rows)
	} else {
		err = sv.model.Predict(out, x, rows)
		if err != nil {
			err = status.Error(codes.Internal, err.Error())
		}
	}
	if err != nil {
		return nil, err
	}
	s.metrics.runtime(sv.name, api, time.Since(start))
	return out, nil
}
