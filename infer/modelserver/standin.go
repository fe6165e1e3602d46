package modelserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StandInFile is what a stand-in version directory holds instead of
// model.iom: the metadata JSON the stand-in was made from, as TF Serving's
// REST API returns it from GET /v1/models/NAME/metadata.
const StandInFile = "stand-in.json"

// standIn is a model made up from a real model's signatures: it answers
// every Predict with outputs of the declared dtypes and shapes, computed
// deterministically from the inputs, so a pipeline, a perf run or a
// rollout can be rehearsed against a production model's shape.
type standIn struct {
	version int64 // model_spec.version of the file; 0 when it has none
	sigs    map[string]*tfpb.SignatureDef
}

// loaded serves the file's signatures plus the marker that tells clients
// this is a stand-in (pipeline.StandInSignature).
func (st *standIn) loaded() *loaded {
	sigs := make(map[string]*tfpb.SignatureDef, len(st.sigs)+1)
	for k, v := range st.sigs {
		sigs[k] = v
	}
	sigs[pipeline.StandInSignature] = &tfpb.SignatureDef{MethodName: pipeline.StandInMethod}
	return newLoaded(sigs, nil, st)
}

// ignoredSignatures are entries of a real model's SignatureDefMap that are
// not for serving: TF2's init op, and the marker of a file taken from
// another stand-in.
var ignoredSignatures = map[string]bool{"__saved_model_init_op": true, pipeline.StandInSignature: true}

// jsonPath is where a check is in the file, for errors such as
// metadata.signature_def.signature_def.serving_default.inputs.x.dtype: ...
type jsonPath string

func (p jsonPath) key(k string) jsonPath {
	if p == "" {
		return jsonPath(k)
	}
	return p + "." + jsonPath(k)
}

func (p jsonPath) index(i int) jsonPath { return p + jsonPath("["+strconv.Itoa(i)+"]") }

func (p jsonPath) errorf(format string, a ...any) error {
	where := string(p)
	if where == "" {
		where = "the file"
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...))
}

func (p jsonPath) object(v any) (map[string]any, error) {
	o, ok := v.(map[string]any)
	if !ok {
		return nil, p.errorf("%s is not an object", describeJSON(v))
	}
	return o, nil
}

func describeJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}

// parseStandIn reads a metadata JSON file. Errors name the JSON path of
// the problem.
func parseStandIn(b []byte) (*standIn, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not JSON (%v): want what TF Serving returns from GET /v1/models/NAME/metadata", err)
	}
	var p jsonPath
	top, err := p.object(root)
	if err != nil {
		return nil, err
	}
	st := &standIn{sigs: map[string]*tfpb.SignatureDef{}}
	if ms, ok := top["model_spec"]; ok {
		spec, err := p.key("model_spec").object(ms)
		if err != nil {
			return nil, err
		}
		if v, ok := spec["version"]; ok {
			vp := p.key("model_spec").key("version")
			if st.version, err = int64Of(v); err != nil || st.version < 0 {
				return nil, vp.errorf("%s is not a version number", describeJSON(v))
			}
		}
	}
	defs := any(top)
	for _, k := range []string{"metadata", "signature_def", "signature_def"} {
		o, err := p.object(defs)
		if err != nil {
			return nil, err
		}
		p = p.key(k)
		var ok bool
		if defs, ok = o[k]; !ok {
			return nil, p.errorf("missing: want what TF Serving returns from GET /v1/models/NAME/metadata ({\"model_spec\": ..., \"metadata\": {\"signature_def\": {\"signature_def\": {...}}}})")
		}
	}
	sigs, err := p.object(defs)
	if err != nil {
		return nil, err
	}
	for _, name := range keys(sigs) {
		if ignoredSignatures[name] {
			continue
		}
		sd, err := parseSignature(p.key(name), sigs[name])
		if err != nil {
			return nil, err
		}
		st.sigs[name] = sd
	}
	sd, ok := st.sigs[signatureName]
	if !ok {
		return nil, p.errorf("no %s signature (it has %s): the worker, perf and doctor feed %s", signatureName, strings.Join(keys(st.sigs), ", "), signatureName)
	}
	if len(sd.Inputs) == 0 || len(sd.Outputs) == 0 {
		return nil, p.key(signatureName).errorf("%d inputs and %d outputs: a stand-in needs at least one of each", len(sd.Inputs), len(sd.Outputs))
	}
	return st, nil
}

func parseSignature(p jsonPath, v any) (*tfpb.SignatureDef, error) {
	o, err := p.object(v)
	if err != nil {
		return nil, err
	}
	sd := &tfpb.SignatureDef{Inputs: map[string]*tfpb.TensorInfo{}, Outputs: map[string]*tfpb.TensorInfo{}, MethodName: predictMethod}
	if m, ok := o["method_name"]; ok {
		s, ok := m.(string)
		if !ok {
			return nil, p.key("method_name").errorf("%s is not a string", describeJSON(m))
		}
		sd.MethodName = s
	}
	for _, side := range []struct {
		key    string
		dst    map[string]*tfpb.TensorInfo
		output bool
	}{{"inputs", sd.Inputs, false}, {"outputs", sd.Outputs, true}} {
		raw, ok := o[side.key]
		if !ok {
			continue
		}
		m, err := p.key(side.key).object(raw)
		if err != nil {
			return nil, err
		}
		for _, alias := range keys(m) {
			ti, err := parseTensorInfo(p.key(side.key).key(alias), m[alias], side.output)
			if err != nil {
				return nil, err
			}
			side.dst[alias] = ti
		}
	}
	return sd, nil
}

func parseTensorInfo(p jsonPath, v any, output bool) (*tfpb.TensorInfo, error) {
	o, err := p.object(v)
	if err != nil {
		return nil, err
	}
	for _, sparse := range []string{"coo_sparse", "composite_tensor"} {
		if _, ok := o[sparse]; ok {
			return nil, p.key(sparse).errorf("a sparse or composite tensor: stand-ins serve dense tensors only")
		}
	}
	ti := &tfpb.TensorInfo{}
	if n, ok := o["name"]; ok {
		s, ok := n.(string)
		if !ok {
			return nil, p.key("name").errorf("%s is not a string", describeJSON(n))
		}
		ti.Encoding = &tfpb.TensorInfo_Name{Name: s}
	}
	dp := p.key("dtype")
	d, ok := o["dtype"]
	if !ok {
		return nil, dp.errorf("missing (want a TF dtype such as \"DT_FLOAT\")")
	}
	ds, _ := d.(string)
	num, known := tfpb.DataType_value[ds]
	if !known || num == 0 || num >= 100 {
		return nil, dp.errorf("%s is not a TF dtype (DT_FLOAT, DT_INT64, DT_STRING, ...)", describeJSON(d))
	}
	ti.Dtype = tfpb.DataType(num)
	switch ti.Dtype {
	case tfpb.DataType_DT_RESOURCE, tfpb.DataType_DT_VARIANT:
		return nil, dp.errorf("%s has no values a stand-in can take or make", ds)
	}
	shape, err := parseShape(p.key("tensor_shape"), o["tensor_shape"])
	if err != nil {
		return nil, err
	}
	if output && shape != nil && !shape.UnknownRank {
		if len(shape.Dim) == 0 {
			return nil, p.key("tensor_shape").errorf("a scalar output has no batch dimension; a stand-in answers one value per row, so it needs [-1, ...]")
		}
		per := int64(1)
		for _, d := range shape.Dim[1:] {
			if per *= max(d.Size, 1); per > maxStandInRow {
				return nil, p.key("tensor_shape").errorf("more than %d values a row: a stand-in makes every output value", maxStandInRow)
			}
		}
	}
	ti.TensorShape = shape
	return ti, nil
}

// maxStandInRow bounds the values of one output row a stand-in makes up.
const maxStandInRow = 1 << 20

// parseShape reads {"dim": [{"size": "-1", "name": ""}, ...], "unknown_rank":
// false}; sizes are strings (protobuf JSON's int64) or numbers. An absent
// shape is an unknown rank.
func parseShape(p jsonPath, v any) (*tfpb.TensorShapeProto, error) {
	if v == nil {
		return &tfpb.TensorShapeProto{UnknownRank: true}, nil
	}
	o, err := p.object(v)
	if err != nil {
		return nil, err
	}
	s := &tfpb.TensorShapeProto{}
	if u, ok := o["unknown_rank"]; ok {
		b, ok := u.(bool)
		if !ok {
			return nil, p.key("unknown_rank").errorf("%s is not true or false", describeJSON(u))
		}
		s.UnknownRank = b
	}
	dims, ok := o["dim"]
	if !ok || dims == nil {
		return s, nil
	}
	list, ok := dims.([]any)
	if !ok {
		return nil, p.key("dim").errorf("%s is not a list", describeJSON(dims))
	}
	if s.UnknownRank && len(list) > 0 {
		return nil, p.key("dim").errorf("dims with unknown_rank true")
	}
	for i, e := range list {
		dp := p.key("dim").index(i)
		d, err := dp.object(e)
		if err != nil {
			return nil, err
		}
		size, err := int64Of(d["size"])
		if err != nil || size < -1 {
			return nil, dp.key("size").errorf("%s is not a size (-1 for unknown, or 0 and up)", describeJSON(d["size"]))
		}
		name, _ := d["name"].(string)
		s.Dim = append(s.Dim, &tfpb.TensorShapeProto_Dim{Size: size, Name: name})
	}
	return s, nil
}

// int64Of reads protobuf JSON's int64: a decimal string or a number.
func int64Of(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return strconv.ParseInt(x, 10, 64)
	case json.Number:
		return strconv.ParseInt(x.String(), 10, 64)
	}
	return 0, fmt.Errorf("not an integer")
}

// run computes the outputs of a stand-in: every row's inputs hash to a
// seed, and each output element is a pure function of that seed, the
// output's alias and the element's index. The same inputs give the same
// outputs on every machine and run; rows that differ in any input differ.
// A response bigger than limit values is refused (RESOURCE_EXHAUSTED),
// as a request bigger than the message limit is.
func (st *standIn) run(sd *tfpb.SignatureDef, inputs []string, in map[string]*tensor.Tensor, rows int, outputs []string, limit int) (map[string]*tensor.Tensor, error) {
	total := 0
	for _, alias := range outputs {
		per := 1
		if dims := tensor.ShapeOf(sd.Outputs[alias].GetTensorShape()); len(dims) > 1 {
			for _, d := range dims[1:] {
				per *= int(max(d, 1))
			}
		}
		if total += rows * per; total > limit {
			return nil, status.Errorf(codes.ResourceExhausted, "the stand-in's outputs for %d rows are more than %d values: send fewer rows", rows, limit)
		}
	}
	seeds := make([]uint64, rows)
	var buf [16]byte
	for r := range seeds {
		h := fnvOffset
		for _, name := range inputs {
			h = fnvAdd(h, []byte(name))
			t := in[name]
			per := t.Len() / max(rows, 1)
			for k := r * per; k < (r+1)*per; k++ {
				h = fnvAdd(h, elemBytes(buf[:0], t, k))
			}
		}
		seeds[r] = h
	}
	res := make(map[string]*tensor.Tensor, len(outputs))
	for _, alias := range outputs {
		ti := sd.Outputs[alias]
		shape := []int64{int64(rows)}
		if dims := tensor.ShapeOf(ti.GetTensorShape()); len(dims) > 1 {
			for _, d := range dims[1:] {
				shape = append(shape, max(d, 1)) // an unknown size is 1
			}
		}
		per := 1
		for _, d := range shape[1:] {
			per *= int(d)
		}
		salt := fnvAdd(fnvOffset, []byte(alias))
		t := &tensor.Tensor{DType: ti.GetDtype(), Shape: shape}
		n := rows * per
		switch kindOfOutput(t.DType) {
		case 'f':
			t.Float32 = make([]float32, n)
		case 'd':
			t.Float64 = make([]float64, n)
		case 'i':
			t.Int64 = make([]int64, n)
		case 'u':
			t.Uint64 = make([]uint64, n)
		case 'b':
			t.Bool = make([]bool, n)
		case 's':
			t.Strings = make([][]byte, n)
		case 'c':
			t.Complex64 = make([]complex64, n)
		case 'C':
			t.Complex128 = make([]complex128, n)
		}
		for r := range rows {
			for k := range per {
				x := splitmix64(seeds[r] ^ salt + uint64(k)*0x9e3779b97f4a7c15)
				i := r*per + k
				u := float64(x>>11) / (1 << 53) // [0, 1)
				switch {
				case t.Float32 != nil:
					t.Float32[i] = float32(u)
				case t.Float64 != nil:
					t.Float64[i] = u
				case t.Int64 != nil:
					t.Int64[i] = int64(x % 100) // fits every integer type
				case t.Uint64 != nil:
					t.Uint64[i] = x % 100
				case t.Bool != nil:
					t.Bool[i] = x&1 == 1
				case t.Strings != nil:
					t.Strings[i] = hex.AppendEncode([]byte("stand-in-"), binary.BigEndian.AppendUint64(nil, x))
				case t.Complex64 != nil:
					t.Complex64[i] = complex(float32(u), 0)
				case t.Complex128 != nil:
					t.Complex128[i] = complex(u, 0)
				}
			}
		}
		res[alias] = t
	}
	return res, nil
}

// kindOfOutput is which value slice a dtype's stand-in outputs fill.
func kindOfOutput(d tfpb.DataType) byte {
	switch d {
	case tfpb.DataType_DT_FLOAT, tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
		return 'f'
	case tfpb.DataType_DT_DOUBLE:
		return 'd'
	case tfpb.DataType_DT_UINT64:
		return 'u'
	case tfpb.DataType_DT_BOOL:
		return 'b'
	case tfpb.DataType_DT_STRING:
		return 's'
	case tfpb.DataType_DT_COMPLEX64:
		return 'c'
	case tfpb.DataType_DT_COMPLEX128:
		return 'C'
	}
	return 'i'
}

// elemBytes is element k of t as bytes for hashing.
func elemBytes(dst []byte, t *tensor.Tensor, k int) []byte {
	le := binary.LittleEndian
	switch {
	case t.Float32 != nil:
		return le.AppendUint32(dst, math.Float32bits(t.Float32[k]))
	case t.Float64 != nil:
		return le.AppendUint64(dst, math.Float64bits(t.Float64[k]))
	case t.Int64 != nil:
		return le.AppendUint64(dst, uint64(t.Int64[k]))
	case t.Uint64 != nil:
		return le.AppendUint64(dst, t.Uint64[k])
	case t.Bool != nil:
		if t.Bool[k] {
			return append(dst, 1)
		}
		return append(dst, 0)
	case t.Strings != nil:
		return append(le.AppendUint32(dst, uint32(len(t.Strings[k]))), t.Strings[k]...)
	case t.Complex64 != nil:
		return le.AppendUint32(le.AppendUint32(dst, math.Float32bits(real(t.Complex64[k]))), math.Float32bits(imag(t.Complex64[k])))
	case t.Complex128 != nil:
		return le.AppendUint64(le.AppendUint64(dst, math.Float64bits(real(t.Complex128[k]))), math.Float64bits(imag(t.Complex128[k])))
	}
	return dst
}

const fnvOffset = uint64(14695981039346656037)

func fnvAdd(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func splitmix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
