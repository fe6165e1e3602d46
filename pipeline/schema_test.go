package pipeline

import (
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tfpb"
)

// typedSpecs is a signature with every dtype and shape the parser handles.
var typedSpecs = []TensorSpec{
	{Name: "user_id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}},
	{Name: "ad_ids", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1, 3}},
	{Name: "context", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 2}},
	{Name: "query", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}},
	{Name: "flags", DType: tfpb.DataType_DT_BOOL, Shape: []int64{-1, 2}},
	{Name: "weight", DType: tfpb.DataType_DT_DOUBLE, Shape: []int64{-1}},
	{Name: "small", DType: tfpb.DataType_DT_INT8, Shape: []int64{-1}},
	{Name: "big", DType: tfpb.DataType_DT_UINT64, Shape: []int64{-1}},
	{Name: "seq", DType: tfpb.DataType_DT_INT32, Shape: []int64{-1, -1}},
	{Name: "grid", DType: tfpb.DataType_DT_HALF, Shape: []int64{-1, 2, 2}},
	{Name: "any", DType: tfpb.DataType_DT_FLOAT, Shape: nil},
}

// typedFields is a valid record's fields for typedSpecs.
var typedFields = map[string]string{
	"user_id": `9223372036854775807`,
	"ad_ids":  `[1, -2, 3]`,
	"context": `[0.5, -1e3]`,
	"query":   `"caf\u00e9 shoes"`,
	"flags":   `[true, false]`,
	"weight":  `0.1`,
	"small":   `-128`,
	"big":     `18446744073709551615`,
	"seq":     `[7, 8, 9, 10]`,
	"grid":    `[[1, 2], [3, 65504]]`,
	"any":     `[[1], [2]]`,
}

func typedSchema(tb testing.TB, o SchemaOptions) *Schema {
	tb.Helper()
	s, err := NewSchema(typedSpecs, o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// record writes an object of fields in a fixed order, with overrides ("-"
// drops a field).
func record(base map[string]string, over map[string]string) string {
	keys := make([]string, 0, len(base)+len(over))
	for k := range base {
		keys = append(keys, k)
	}
	for k := range over {
		if _, ok := base[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(`{"id":"r-1"`)
	for _, k := range keys {
		v, ok := over[k]
		if !ok {
			v = base[k]
		}
		if v == "-" {
			continue
		}
		b.WriteString(`,"` + k + `":` + v)
	}
	b.WriteString("}")
	return b.String()
}

func TestSchemaParsesEveryDType(t *testing.T) {
	s := typedSchema(t, SchemaOptions{})
	if s.Seed() || !s.Decides() || s.Len() != len(typedSpecs) {
		t.Fatalf("seed %v decides %v len %d", s.Seed(), s.Decides(), s.Len())
	}
	var v Values
	in := record(typedFields, nil)
	if rerr := s.Parse([]byte(in), &v); rerr != nil {
		t.Fatalf("%v: %s", rerr, in)
	}
	if string(v.ID) != `"r-1"` {
		t.Errorf("id %q", v.ID)
	}
	idx := map[string]int{}
	for i := range s.Len() {
		spec, _, _ := s.Input(i)
		idx[spec.Name] = i
	}
	check := func(name string, got, want any, dims []int64) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
		if d := v.Dims(idx[name]); !reflect.DeepEqual(d, dims) {
			t.Errorf("%s dims %v, want %v", name, d, dims)
		}
	}
	check("user_id", v.Int64s(idx["user_id"]), []int64{math.MaxInt64}, []int64{})
	check("ad_ids", v.Int64s(idx["ad_ids"]), []int64{1, -2, 3}, []int64{3})
	check("context", v.Float32s(idx["context"]), []float32{0.5, -1000}, []int64{2})
	check("query", strs(v.Strings(idx["query"])), []string{"café shoes"}, []int64{})
	check("flags", v.Bools(idx["flags"]), []bool{true, false}, []int64{2})
	check("weight", v.Float64s(idx["weight"]), []float64{0.1}, []int64{})
	check("small", v.Int64s(idx["small"]), []int64{-128}, []int64{})
	check("big", v.Int64s(idx["big"]), []int64{-1}, []int64{}) // 2^64-1 as its bits
	check("seq", v.Int64s(idx["seq"]), []int64{7, 8, 9, 10}, []int64{4})
	check("grid", v.Float32s(idx["grid"]), []float32{1, 2, 3, 65504}, []int64{2, 2})
	check("any", v.Float32s(idx["any"]), []float32{1, 2}, []int64{2, 1})

	// A second record of other inner sizes reuses the Values.
	var w Values
	in2 := record(typedFields, map[string]string{"seq": `[]`, "any": `5`, "query": `{"b64": "AAEC/w=="}`})
	if rerr := s.Parse([]byte(in2), &w); rerr != nil {
		t.Fatalf("%v: %s", rerr, in2)
	}
	if d := w.Dims(idx["seq"]); !reflect.DeepEqual(d, []int64{0}) {
		t.Errorf("empty seq dims %v", d)
	}
	if d := w.Dims(idx["any"]); len(d) != 0 {
		t.Errorf("scalar any dims %v", d)
	}
	if got := w.Strings(idx["query"])[0]; string(got) != "\x00\x01\x02\xff" {
		t.Errorf("b64 query %q", got)
	}
	if v.SameShapes(&w) {
		t.Error("records with different seq lengths must not share a batch")
	}
	var x Values
	if rerr := s.Parse([]byte(in), &x); rerr != nil || !v.SameShapes(&x) {
		t.Errorf("the same record twice: %v, same shapes %v", rerr, v.SameShapes(&x))
	}
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, s := range b {
		out[i] = string(s)
	}
	return out
}

func TestSchemaReasons(t *testing.T) {
	s := typedSchema(t, SchemaOptions{})
	tests := []struct {
		name   string
		over   map[string]string
		raw    string // instead of a record built from over
		reason string
		detail string // substring
	}{
		{name: "missing input", over: map[string]string{"ad_ids": "-"}, reason: ReasonMissingInput, detail: `no "ad_ids" field`},
		{name: "null input", over: map[string]string{"query": "null"}, reason: ReasonMissingInput, detail: `"query" is null`},
		{name: "string for int", over: map[string]string{"user_id": `"42"`}, reason: ReasonWrongType, detail: `user_id = "42" is not an integer (DT_INT64)`},
		{name: "fraction for int", over: map[string]string{"ad_ids": `[1, 2.5, 3]`}, reason: ReasonWrongType, detail: `ad_ids[1] = 2.5 is not an integer (DT_INT64)`},
		{name: "number for string", over: map[string]string{"query": `7`}, reason: ReasonWrongType, detail: `query = 7 is not a string`},
		{name: "number for bool", over: map[string]string{"flags": `[1, 0]`}, reason: ReasonWrongType, detail: `flags[0] = 1 is not true or false (DT_BOOL)`},
		{name: "string for float", over: map[string]string{"context": `["0.5", 1]`}, reason: ReasonWrongType, detail: `context[0] = "0.5" is not a number (DT_FLOAT)`},
		{name: "object for float", over: map[string]string{"weight": `{"v": 1}`}, reason: ReasonWrongType, detail: `weight = {"v": 1} is not a number (DT_DOUBLE)`},
		{name: "bad b64", over: map[string]string{"query": `{"b64": "!!"}`}, reason: ReasonWrongType, detail: `is not valid base64`},
		{name: "object not b64", over: map[string]string{"query": `{"text": "x"}`}, reason: ReasonWrongType, detail: `query = {"text": "x"} is not a string`},
		{name: "too few", over: map[string]string{"ad_ids": `[1, 2]`}, reason: ReasonWrongShape, detail: `ad_ids has 2 values, the model wants 3 (shape [-1,3])`},
		{name: "scalar for list", over: map[string]string{"ad_ids": `1`}, reason: ReasonWrongShape, detail: `ad_ids = 1 is not a list; the model wants a list of 3 there`},
		{name: "list for scalar", over: map[string]string{"user_id": `[1]`}, reason: ReasonWrongShape, detail: `user_id is a list; the model wants one value (shape [-1])`},
		{name: "too deep", over: map[string]string{"context": `[[1], [2]]`}, reason: ReasonWrongShape, detail: `context[0] is a list`},
		{name: "inner too few", over: map[string]string{"grid": `[[1, 2], [3]]`}, reason: ReasonWrongShape, detail: `grid[1] has 1 values, the model wants 2 (shape [-1,2,2])`},
		{name: "ragged unknown rank", over: map[string]string{"any": `[[1, 2], [3]]`}, reason: ReasonWrongShape, detail: `must not be ragged`},
		{name: "mixed depth unknown rank", over: map[string]string{"any": `[1, [2]]`}, reason: ReasonWrongShape, detail: `any[1] is a list`},
		{name: "int64 + 1", over: map[string]string{"user_id": `9223372036854775808`}, reason: ReasonOutOfRange, detail: `user_id = 9223372036854775808 is out of range for DT_INT64 (-9223372036854775808..9223372036854775807)`},
		{name: "int64 min ok, min - 1 not", over: map[string]string{"user_id": `-9223372036854775809`}, reason: ReasonOutOfRange},
		{name: "int8", over: map[string]string{"small": `128`}, reason: ReasonOutOfRange, detail: `small = 128 is out of range for DT_INT8 (-128..127)`},
		{name: "int32 in a list", over: map[string]string{"seq": `[1, 2147483648]`}, reason: ReasonOutOfRange, detail: `seq[1] = 2147483648`},
		{name: "negative uint64", over: map[string]string{"big": `-1`}, reason: ReasonOutOfRange, detail: `DT_UINT64 (0..18446744073709551615)`},
		{name: "uint64 + 1", over: map[string]string{"big": `18446744073709551616`}, reason: ReasonOutOfRange},
		{name: "float32 overflow", over: map[string]string{"context": `[1e39, 0]`}, reason: ReasonOutOfRange, detail: `context[0] = 1e39 is out of range for DT_FLOAT`},
		{name: "half overflow", over: map[string]string{"grid": `[[1, 2], [3, 65520]]`}, reason: ReasonOutOfRange, detail: `DT_HALF`},
		{name: "double overflow", over: map[string]string{"weight": `1e309`}, reason: ReasonOutOfRange},
		{name: "NaN", over: map[string]string{"context": `[NaN, 1]`}, reason: ReasonNonFinite, detail: `context[0] is NaN`},
		{name: "-Infinity", over: map[string]string{"weight": `-Infinity`}, reason: ReasonNonFinite, detail: `weight is -Infinity`},
		{name: "bad id", over: map[string]string{"id": `[1]`}, raw: `{"id":[1]}`, reason: ReasonBadID, detail: `"id" must be a string or a number`},
		{name: "duplicate input", raw: `{"query":"a","query":"b"}`, reason: ReasonInvalidJSON, detail: `duplicate key "query"`},
		{name: "truncated", raw: `{"user_id": 1, "ad_ids": [1,`, reason: ReasonInvalidJSON},
		{name: "not an object", raw: `[1]`, reason: ReasonInvalidJSON},
		{name: "control char in string", raw: "{\"query\":\"a\nb\"}", reason: ReasonInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.raw
			if in == "" {
				in = record(typedFields, tt.over)
			}
			var v Values
			rerr := s.Parse([]byte(in), &v)
			if rerr == nil {
				t.Fatalf("accepted %s", in)
			}
			if rerr.Reason != tt.reason || !strings.Contains(rerr.Detail, tt.detail) {
				t.Fatalf("got %s: %s\nwant %s: ...%s...\nrecord %s", rerr.Reason, rerr.Detail, tt.reason, tt.detail, in)
			}
			if !IsReason(rerr.Reason) {
				t.Fatalf("%q is not in Reasons", rerr.Reason)
			}
		})
	}
}

func TestSchemaFieldsAndFormats(t *testing.T) {
	specs := []TensorSpec{
		{Name: "user_id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}},
		{Name: "x", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1}},
	}
	s, err := NewSchema(specs, SchemaOptions{IDField: "request_id", InputFields: map[string]string{"user_id": "uid"}})
	if err != nil {
		t.Fatal(err)
	}
	var v Values
	in := `{"request_id": 77, "id": "not the id", "uid": 5, "x": 2.5, "user_id": "ignored: not the field"}`
	if rerr := s.Parse([]byte(in), &v); rerr != nil {
		t.Fatal(rerr)
	}
	if string(v.ID) != "77" || v.Int64s(1)[0] != 5 || v.Float32s(0)[0] != 2.5 {
		t.Fatalf("id %q user_id %v x %v", v.ID, v.Int64s(1), v.Float32s(0))
	}
	rerr := s.Parse([]byte(`{"x": 1, "user_id": 5}`), &v)
	if rerr == nil || rerr.Reason != ReasonMissingInput || rerr.Detail != `no "uid" field (input "user_id")` {
		t.Fatalf("mapped field missing: %v", rerr)
	}
	rerr = s.Parse([]byte(`{"x": 1, "uid": "a"}`), &v)
	if rerr == nil || rerr.Detail != `user_id (field "uid") = "a" is not an integer (DT_INT64)` {
		t.Fatalf("mapped field detail: %v", rerr)
	}

	raw, err := NewSchema([]TensorSpec{{Name: "examples", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}}}, SchemaOptions{ValueFormat: ValueFormatRaw})
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte("\x0a\x05not json at all")
	if rerr := raw.Parse(rec, &v); rerr != nil || string(v.Strings(0)[0]) != string(rec) || v.ID != nil || len(v.Dims(0)) != 0 {
		t.Fatalf("raw: %v %q", rerr, v.Strings(0))
	}

	for _, tt := range []struct {
		specs []TensorSpec
		o     SchemaOptions
		want  string
	}{
		{specs, SchemaOptions{InputFields: map[string]string{"nope": "f"}}, `--input-field nope=f: the model has no input "nope" (it has "user_id", "x")`},
		{specs, SchemaOptions{ValueFormat: ValueFormatRaw}, `--value-format raw feeds each record's bytes to a model whose single input is DT_STRING`},
		{specs, SchemaOptions{ValueFormat: "avro"}, `--value-format "avro"`},
		{specs, SchemaOptions{IDField: "x"}, `also --id-field`},
		{specs, SchemaOptions{InputFields: map[string]string{"user_id": "x"}}, `both read field "x"`},
		{[]TensorSpec{{Name: "c", DType: tfpb.DataType_DT_COMPLEX64, Shape: []int64{-1}}}, SchemaOptions{}, `input "c" is DT_COMPLEX64`},
		{[]TensorSpec{{Name: "s", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{}}}, SchemaOptions{}, `has shape []`},
		{nil, SchemaOptions{}, `no inputs`},
	} {
		if _, err := NewSchema(tt.specs, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSchema(%v, %+v) = %v, want ...%s...", tt.specs, tt.o, err, tt.want)
		}
	}
}

func TestSchemaDiff(t *testing.T) {
	s := typedSchema(t, SchemaOptions{})
	if err := s.Diff(typedSpecs); err != nil {
		t.Fatalf("same signature: %v", err)
	}
	changed := append([]TensorSpec(nil), typedSpecs...)
	changed[1] = TensorSpec{Name: "ad_ids", DType: tfpb.DataType_DT_INT32, Shape: []int64{-1, 3}}
	if err := s.Diff(changed); err == nil || err.Error() != `its input "ad_ids" is DT_INT32 [-1,3]; records are validated for DT_INT64 [-1,3]` {
		t.Errorf("dtype change: %v", err)
	}
	if err := s.Diff(typedSpecs[1:]); err == nil || !strings.Contains(err.Error(), `no input "user_id"`) {
		t.Errorf("input gone: %v", err)
	}
	extra := append(append([]TensorSpec(nil), typedSpecs...), TensorSpec{Name: "zz", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1}})
	if err := s.Diff(extra); err == nil || !strings.Contains(err.Error(), `zz DT_FLOAT [-1]`) {
		t.Errorf("input added: %v", err)
	}
}

// BenchmarkParseTyped is an ads-style record of five typed inputs, padded
// to 2 KB like a perf record.
func BenchmarkParseTyped(b *testing.B) {
	s, err := NewSchema([]TensorSpec{
		{Name: "user_id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}},
		{Name: "ad_ids", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1, 8}},
		{Name: "context", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 16}},
		{Name: "query", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}},
		{Name: "hour", DType: tfpb.DataType_DT_INT32, Shape: []int64{-1}},
	}, SchemaOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rec := []byte(`{"id":"perf-1","user_id":123456789,"ad_ids":[1001,1002,1003,1004,1005,1006,1007,1008],` +
		`"context":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.11,0.12,0.13,0.14,0.15,0.16,0.17],"query":"running shoes","hour":13,"pad":"`)
	rec = append(rec, strings.Repeat("x", 2048-len(rec)-2)...)
	rec = append(rec, `"}`...)
	b.SetBytes(int64(len(rec)))
	var v Values
	b.ReportAllocs()
	for b.Loop() {
		if rerr := s.Parse(rec, &v); rerr != nil {
			b.Fatal(rerr)
		}
	}
}
