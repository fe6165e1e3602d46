package modelserver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	signatureName = "serving_default"
	predictMethod = "tensorflow/serving/predict"
)

// loaded is what one version serves: its signatures and how to compute
// them, a network from a .iom file or a stand-in from a metadata file.
type loaded struct {
	sigs  map[string]*tfpb.SignatureDef
	names map[*tfpb.SignatureDef]sigNames // each signature's aliases, sorted once
	net   *model.Model
	stand *standIn
}

type sigNames struct{ inputs, outputs []string }

func newLoaded(sigs map[string]*tfpb.SignatureDef, net *model.Model, stand *standIn) *loaded {
	l := &loaded{sigs: sigs, names: make(map[*tfpb.SignatureDef]sigNames, len(sigs)), net: net, stand: stand}
	for _, sd := range sigs {
		l.names[sd] = sigNames{inputs: keys(sd.GetInputs()), outputs: keys(sd.GetOutputs())}
	}
	return l
}

func loadedNet(m *model.Model) *loaded {
	return newLoaded(map[string]*tfpb.SignatureDef{signatureName: netSignature(m)}, m, nil)
}

// params sizes a version for the load log.
func (l *loaded) params() int {
	if l.net != nil {
		return l.net.Params()
	}
	return 0
}

// netSignature is the SignatureDef a network exposes, derived from its file.
func netSignature(m *model.Model) *tfpb.SignatureDef {
	sd := &tfpb.SignatureDef{MethodName: predictMethod, Inputs: map[string]*tfpb.TensorInfo{}, Outputs: map[string]*tfpb.TensorInfo{}}
	for _, in := range m.Inputs {
		sd.Inputs[in.Name] = &tfpb.TensorInfo{Encoding: &tfpb.TensorInfo_Name{Name: in.Name + ":0"}, Dtype: in.DType, TensorShape: tensor.ShapeProto(in.Shape...)}
	}
	for _, o := range m.Outputs {
		sd.Outputs[o.Name] = &tfpb.TensorInfo{Encoding: &tfpb.TensorInfo_Name{Name: o.Name + ":0"}, Dtype: tfpb.DataType_DT_FLOAT, TensorShape: tensor.ShapeProto(-1, int64(o.Width))}
	}
	return sd
}

// signature resolves a request's signature name (FAILED_PRECONDITION, as
// gRPC Predict in TF; REST maps it to 400 too).
func (l *loaded) signature(name string) (*tfpb.SignatureDef, error) {
	if name == "" {
		name = signatureName
	}
	sd, ok := l.sigs[name]
	if !ok || name == pipeline.StandInSignature {
		return nil, status.Errorf(codes.FailedPrecondition, "Serving signature key \"%s\" not found.", name)
	}
	return sd, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkInputs applies TF's alias rules to the request's input names.
func (l *loaded) checkInputs(sd *tfpb.SignatureDef, names []string) error {
	ok := len(names) == len(sd.Inputs)
	for _, n := range names {
		if _, in := sd.Inputs[n]; !in {
			ok = false
		}
	}
	if ok { // the common case, answered without sorting anything
		return nil
	}
	sort.Strings(names)
	want := l.names[sd].inputs
	var extra, missing []string
	for _, n := range names {
		if _, ok := sd.Inputs[n]; !ok {
			extra = append(extra, n)
		}
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			missing = append(missing, w)
		}
	}
	if len(names) != len(want) {
		return status.Errorf(codes.InvalidArgument,
			"input size does not match signature: %d!=%d len({%s}) != len({%s}). Sent extra: {%s}. Missing but required: {%s}.",
			len(names), len(want), strings.Join(names, ","), strings.Join(want, ","), strings.Join(extra, ","), strings.Join(missing, ","))
	}
	if len(extra) > 0 {
		return status.Errorf(codes.InvalidArgument,
			"input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", extra[0], strings.Join(want, ","))
	}
	return nil
}

// checkOutputFilter applies TF's output_filter rules.
func (l *loaded) checkOutputFilter(sd *tfpb.SignatureDef, filter []string) error {
	for i, f := range filter {
		if _, ok := sd.Outputs[f]; !ok {
			return status.Errorf(codes.InvalidArgument,
				"output tensor alias not found in signature: %s Outputs expected to be in the set {%s}.", f, strings.Join(l.names[sd].outputs, ","))
		}
		if slices.Contains(filter[:i], f) {
			return status.Errorf(codes.InvalidArgument, "duplicate output tensor alias: %s", f)
		}
	}
	return nil
}

// checkTensors compares decoded inputs with the signature and returns the
// batch size. A network in the seed's shape answers like TF's MatMul
// kernel; other inputs must have the signature's dtype and every size it
// fixes. (TF 2.12 itself leaves shapes to the model's kernels.)
func (l *loaded) checkTensors(sd *tfpb.SignatureDef, in map[string]*tensor.Tensor) (int, error) {
	names := l.names[sd].inputs
	if l.net != nil && l.net.Direct() && len(l.net.Inputs[0].Shape) == 2 {
		t := in[names[0]]
		if t.DType != tfpb.DataType_DT_FLOAT {
			return 0, status.Errorf(codes.InvalidArgument, "Expects arg[0] to be float but %s is provided", dtypeName(t.DType))
		}
		if len(t.Shape) != 2 {
			return 0, status.Errorf(codes.InvalidArgument, "In[0] is not a matrix. Instead it has shape %s", shapeString(t.Shape))
		}
		if t.Shape[1] != int64(l.net.InputWidth()) {
			ly := l.net.Layers[0]
			return 0, status.Errorf(codes.InvalidArgument, "Matrix size-incompatible: In[0]: %s, In[1]: [%d,%d]", shapeString(t.Shape), ly.In, ly.Out)
		}
		return int(t.Shape[0]), nil
	}
	rows, first := -1, ""
	for i, name := range names {
		ti, t := sd.Inputs[name], in[name]
		if t.DType != ti.GetDtype() {
			return 0, status.Errorf(codes.InvalidArgument, "Expects arg[%d] to be %s but %s is provided", i, dtypeName(ti.GetDtype()), dtypeName(t.DType))
		}
		if want := tensor.ShapeOf(ti.GetTensorShape()); want != nil {
			ok := len(t.Shape) == len(want)
			for d := 0; ok && d < len(want); d++ {
				ok = want[d] < 0 || want[d] == t.Shape[d]
			}
			if !ok {
				return 0, status.Errorf(codes.InvalidArgument, "input %s has shape %s; the signature wants %s", name, shapeString(t.Shape), shapeString(want))
			}
		}
		if len(t.Shape) == 0 {
			continue
		}
		if n := int(t.Shape[0]); rows < 0 {
			rows, first = n, name
		} else if n != rows {
			return 0, status.Errorf(codes.InvalidArgument, "inputs disagree on the batch size: %s has %d rows, %s has %d", first, rows, name, n)
		}
	}
	if l.net != nil {
		for _, mi := range l.net.Inputs {
			if mi.Enc == model.Hashed && in[mi.Name].Len()%max(rows, 1) != 0 {
				return 0, status.Errorf(codes.InvalidArgument, "input %s has %d values for %d rows", mi.Name, in[mi.Name].Len(), rows)
			}
		}
	}
	return max(rows, 1), nil
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

// predict runs checked inputs through a servable: the --inject-latency
// delay, then the network (via the batcher when batching is on) or the
// stand-in, then the version's --fault (after the run, so a slow version's
// batch still ran: what a slow model looks like). It returns the outputs asked for (every output when outputs
// is empty).
func (s *Server) predict(ctx context.Context, sv *servable, api string, sd *tfpb.SignatureDef, in map[string]*tensor.Tensor, rows int, outputs []string) (map[string]*tensor.Tensor, error) {
	if err := pause(ctx, s.cfg.InjectLatency); err != nil {
		return nil, err
	}
	if len(outputs) == 0 {
		outputs = sv.ld.names[sd].outputs
	}
	start := time.Now()
	var res map[string]*tensor.Tensor
	var err error
	if st := sv.ld.stand; st != nil {
		res, err = st.run(sd, sv.ld.names[sd].inputs, in, rows, outputs, s.cfg.MaxMessageBytes/4)
	} else {
		res, err = s.runNet(ctx, sv.ld.net, in, rows, outputs)
	}
	if err != nil {
		return nil, err
	}
	s.metrics.runtime(sv.name, api, time.Since(start))
	if len(s.faults) > 0 {
		if err := s.faults.apply(ctx, s.metrics, sv.name, sv.version); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runNet featurizes (the seed's shape needs none), computes and slices the
// last layer into the outputs.
func (s *Server) runNet(ctx context.Context, m *model.Model, in map[string]*tensor.Tensor, rows int, outputs []string) (map[string]*tensor.Tensor, error) {
	var x []float32
	if m.Direct() {
		x = in[m.Inputs[0].Name].Float32
	} else {
		x = make([]float32, rows*m.InputWidth())
		if err := m.Featurize(x, in, rows); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	ow := m.OutputWidth()
	out := make([]float32, rows*ow)
	if rows > 0 {
		var err error
		if s.batcher != nil {
			err = s.batcher.submit(ctx, m, x, out, rows)
		} else if err = m.Predict(out, x, rows); err != nil {
			err = status.Error(codes.Internal, err.Error())
		}
		if err != nil {
			return nil, err
		}
	}
	res := make(map[string]*tensor.Tensor, len(outputs))
	for _, o := range m.Outputs {
		if !slices.Contains(outputs, o.Name) {
			continue
		}
		t := &tensor.Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{int64(rows), int64(o.Width)}}
		if o.Width == ow {
			t.Float32 = out
		} else {
			t.Float32 = make([]float32, rows*o.Width)
			for r := range rows {
				copy(t.Float32[r*o.Width:(r+1)*o.Width], out[r*ow+o.Offset:])
			}
		}
		res[o.Name] = t
	}
	return res, nil
}
