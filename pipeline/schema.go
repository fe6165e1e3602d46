package pipeline

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/inferops/inferops/infer/tfpb"
)

// TensorSpec is one input or output of a model signature as the pipeline
// needs it: the alias, the dtype and the shape with the batch dimension
// first (-1 where the size is unknown; nil for an unknown rank).
type TensorSpec struct {
	Name  string
	DType tfpb.DataType
	Shape []int64
}

func (t TensorSpec) String() string {
	return t.Name + " " + t.DType.String() + " " + FormatShape(t.Shape)
}

// FormatShape writes a shape as TF prints it in errors, [-1,32]; nil is an
// unknown rank.
func FormatShape(s []int64) string {
	if s == nil {
		return "unknown rank"
	}
	b := []byte{'['}
	for i, d := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}

// Value formats of input records (--value-format).
const (
	// ValueFormatJSON: a record is a flat JSON object with one field per
	// signature input (the default).
	ValueFormatJSON = "json"
	// ValueFormatRaw: a record's bytes are the value of the model's single
	// DT_STRING input, unchanged (serialized tf.Example from TFX producers).
	ValueFormatRaw = "raw"
)

// SchemaOptions say how records name what the signature needs.
type SchemaOptions struct {
	// IDField is the field copied into the result as its id (--id-field,
	// default FieldID). Records without it are still served.
	IDField string
	// InputFields maps a signature input to the record field it is read
	// from (--input-field INPUT=FIELD); unmapped inputs are read from the
	// field of their own name.
	InputFields map[string]string
	// ValueFormat is ValueFormatJSON (default) or ValueFormatRaw.
	ValueFormat string
}

// Kind is the column an input's values are parsed into.
type Kind uint8

const (
	KindFloat32 Kind = iota // DT_FLOAT, DT_HALF, DT_BFLOAT16
	KindFloat64             // DT_DOUBLE
	KindInt64               // every integer type; DT_UINT64 as its two's-complement bits
	KindBool                // DT_BOOL
	KindString              // DT_STRING: bytes
)

// maxRank bounds the inner dimensions of an input the worker reads from
// JSON: deeper nesting is a producer bug, not a model.
const maxRank = 16

// Schema is the contract between producers and a model: which record field
// feeds which signature input, with what dtype and shape. It is built once
// from the signature the worker loads and parses every record (Parse).
//
// A model whose only input is DT_FLOAT [-1, D] named "features" is the
// seed's: its records keep the seed's fast path and dead-letter reasons
// (missing_features, non_numeric_feature, wrong_width). Every other schema
// reports missing_input, wrong_type, wrong_shape and out_of_range, with a
// detail naming the input.
type Schema struct {
	inputs  []schemaInput // sorted by name
	idField string
	raw     bool
	seed    bool
	width   int  // seed: D
	decides bool // some input's inner shape is decided by each record
	byField map[string]int
}

type schemaInput struct {
	spec  TensorSpec
	field string
	kind  Kind
	inner []int64 // shape without the batch dimension; nil: unknown rank
	// lo and hi bound integer inputs: DT_UINT64 is the only type whose
	// range does not fit int64, and it is checked on its own.
	lo, hi int64
}

// NewSchema checks that records can feed every input and builds the
// parser. Errors name the flag to fix.
func NewSchema(inputs []TensorSpec, o SchemaOptions) (*Schema, error) {
	if o.IDField == "" {
		o.IDField = FieldID
	}
	switch o.ValueFormat {
	case "", ValueFormatJSON, ValueFormatRaw:
	default:
		return nil, fmt.Errorf("--value-format %q: want %s or %s", o.ValueFormat, ValueFormatJSON, ValueFormatRaw)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("the signature has no inputs: nothing to read from records")
	}
	s := &Schema{idField: o.IDField, raw: o.ValueFormat == ValueFormatRaw, byField: map[string]int{}}
	byName := map[string]bool{}
	for _, in := range inputs {
		if byName[in.Name] {
			return nil, fmt.Errorf("the signature lists input %q twice", in.Name)
		}
		byName[in.Name] = true
	}
	for name := range o.InputFields {
		if !byName[name] {
			return nil, fmt.Errorf("--input-field %s=%s: the model has no input %q (it has %s)", name, o.InputFields[name], name, specNames(inputs))
		}
	}
	sorted := append([]TensorSpec(nil), inputs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, spec := range sorted {
		in := schemaInput{spec: spec, field: spec.Name}
		if f, ok := o.InputFields[spec.Name]; ok {
			if f == "" {
				return nil, fmt.Errorf("--input-field %s=: name the record field", spec.Name)
			}
			in.field = f
		}
		if spec.Shape != nil && len(spec.Shape) == 0 {
			return nil, fmt.Errorf("input %q has shape [] (a scalar without a batch dimension): the worker batches records along the first dimension, so it needs [-1, ...]", spec.Name)
		}
		if spec.Shape != nil {
			in.inner = spec.Shape[1:]
			if len(in.inner) > maxRank {
				return nil, fmt.Errorf("input %q has rank %d: records can nest at most %d levels below the batch", spec.Name, len(spec.Shape), maxRank)
			}
			for _, d := range in.inner {
				if d < 0 {
					s.decides = true
				}
			}
		} else {
			s.decides = true
		}
		var err error
		if in.kind, in.lo, in.hi, err = kindOf(spec); err != nil {
			return nil, err
		}
		if in.field == s.idField {
			return nil, fmt.Errorf("input %q is read from field %q, which is also --id-field: set --id-field to the record's id field, or map the input with --input-field %s=FIELD", spec.Name, in.field, spec.Name)
		}
		if other, dup := s.byField[in.field]; dup {
			return nil, fmt.Errorf("inputs %q and %q both read field %q (check --input-field)", s.inputs[other].spec.Name, spec.Name, in.field)
		}
		s.byField[in.field] = len(s.inputs)
		s.inputs = append(s.inputs, in)
	}
	if s.raw {
		if len(s.inputs) != 1 || s.inputs[0].kind != KindString {
			return nil, fmt.Errorf("--value-format raw feeds each record's bytes to a model whose single input is DT_STRING; this model takes %s (use --value-format json)", specList(sorted))
		}
		if in := s.inputs[0]; in.inner == nil || len(in.inner) != 0 {
			return nil, fmt.Errorf("--value-format raw: input %q has shape %s; one record is one string, so it needs [-1]", in.spec.Name, FormatShape(in.spec.Shape))
		}
		return s, nil
	}
	if in := s.inputs[0]; len(s.inputs) == 1 && in.spec.DType == tfpb.DataType_DT_FLOAT && in.field == FieldFeatures &&
		len(in.inner) == 1 && in.inner[0] > 0 && in.inner[0] <= math.MaxInt32 {
		s.seed, s.width = true, int(in.inner[0])
	}
	return s, nil
}

func kindOf(spec TensorSpec) (k Kind, lo, hi int64, err error) {
	switch spec.DType {
	case tfpb.DataType_DT_FLOAT, tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
		return KindFloat32, 0, 0, nil
	case tfpb.DataType_DT_DOUBLE:
		return KindFloat64, 0, 0, nil
	case tfpb.DataType_DT_BOOL:
		return KindBool, 0, 0, nil
	case tfpb.DataType_DT_STRING:
		return KindString, 0, 0, nil
	case tfpb.DataType_DT_INT8:
		return KindInt64, math.MinInt8, math.MaxInt8, nil
	case tfpb.DataType_DT_INT16:
		return KindInt64, math.MinInt16, math.MaxInt16, nil
	case tfpb.DataType_DT_INT32:
		return KindInt64, math.MinInt32, math.MaxInt32, nil
	case tfpb.DataType_DT_INT64:
		return KindInt64, math.MinInt64, math.MaxInt64, nil
	case tfpb.DataType_DT_UINT8:
		return KindInt64, 0, math.MaxUint8, nil
	case tfpb.DataType_DT_UINT16:
		return KindInt64, 0, math.MaxUint16, nil
	case tfpb.DataType_DT_UINT32:
		return KindInt64, 0, math.MaxUint32, nil
	case tfpb.DataType_DT_UINT64:
		return KindInt64, 0, 0, nil // checked as uint64
	}
	return 0, 0, 0, fmt.Errorf("input %q is %s, which TF Serving's JSON row format has no values for: the worker reads DT_FLOAT, DT_DOUBLE, DT_HALF, DT_BFLOAT16, integer, DT_BOOL and DT_STRING inputs", spec.Name, spec.DType)
}

func specNames(specs []TensorSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = strconv.Quote(s.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func specList(specs []TensorSpec) string {
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// Len is the number of inputs.
func (s *Schema) Len() int { return len(s.inputs) }

// Input is input i (inputs are sorted by name): its spec, the record field
// it is read from and the column its values go to.
func (s *Schema) Input(i int) (spec TensorSpec, field string, kind Kind) {
	in := &s.inputs[i]
	return in.spec, in.field, in.kind
}

// Inputs are the signature inputs the schema was built for, sorted by name.
func (s *Schema) Inputs() []TensorSpec {
	out := make([]TensorSpec, len(s.inputs))
	for i, in := range s.inputs {
		out[i] = in.spec
	}
	return out
}

// IDField is the field copied into results as their id.
func (s *Schema) IDField() string { return s.idField }

// Raw reports --value-format raw.
func (s *Schema) Raw() bool { return s.raw }

// Seed reports the seed's record format ({"id": ..., "features": [D
// floats]}), parsed on its fast path with the seed's reasons.
func (s *Schema) Seed() bool { return s.seed }

// Decides reports whether some input's inner shape is decided by each
// record (a -1 below the batch dimension, or an unknown rank): records
// batched together must then agree on it.
func (s *Schema) Decides() bool { return s.decides }

// Describe lists the inputs and their fields, for logs and errors.
func (s *Schema) Describe() string {
	parts := make([]string, len(s.inputs))
	for i, in := range s.inputs {
		parts[i] = in.spec.String()
		if in.field != in.spec.Name {
			parts[i] += " from field " + strconv.Quote(in.field)
		}
	}
	if s.raw {
		return parts[0] + " from the raw record value"
	}
	return strings.Join(parts, ", ")
}

// Diff says how a signature's inputs differ from the ones records are
// validated for, naming the input; nil when they are the same.
func (s *Schema) Diff(inputs []TensorSpec) error {
	got := map[string]TensorSpec{}
	for _, in := range inputs {
		got[in.Name] = in
	}
	for _, in := range s.inputs {
		g, ok := got[in.spec.Name]
		switch {
		case !ok:
			return fmt.Errorf("it has no input %q (records are validated for %s)", in.spec.Name, in.spec)
		case g.DType != in.spec.DType || !sameShape(g.Shape, in.spec.Shape):
			return fmt.Errorf("its input %q is %s %s; records are validated for %s %s", in.spec.Name, g.DType, FormatShape(g.Shape), in.spec.DType, FormatShape(in.spec.Shape))
		}
		delete(got, in.spec.Name)
	}
	if len(got) > 0 {
		extra := make([]TensorSpec, 0, len(got))
		for _, g := range got {
			extra = append(extra, g)
		}
		sort.Slice(extra, func(i, j int) bool { return extra[i].Name < extra[j].Name })
		return fmt.Errorf("it takes input %s, which records are not validated for", extra[0])
	}
	return nil
}

func sameShape(a, b []int64) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
