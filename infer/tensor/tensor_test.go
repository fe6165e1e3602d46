package tensor

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tfpb"
)

func le32(vals ...uint32) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func TestDecodeTensor(t *testing.T) {
	shape := func(d ...int64) *tfpb.TensorShapeProto { return ShapeProto(d...) }
	f32 := math.Float32bits
	tests := []struct {
		name    string
		in      *tfpb.TensorProto
		want    Tensor
		wantErr string
	}{
		{"float_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2, 1), FloatVal: []float32{0.25, 0.5}},
			Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, 1}, Float32: []float32{0.25, 0.5}}, ""},
		{"float content", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 2), TensorContent: le32(f32(1.5), f32(-2))},
			Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{1, 2}, Float32: []float32{1.5, -2}}, ""},
		{"single value fills shape", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(3), FloatVal: []float32{7}},
			Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{3}, Float32: []float32{7, 7, 7}}, ""},
		{"scalar", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_DOUBLE, DoubleVal: []float64{2.5}},
			Tensor{DType: tfpb.DataType_DT_DOUBLE, Shape: []int64{}, Float64: []float64{2.5}}, ""},
		{"int_val int8", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, TensorShape: shape(2), IntVal: []int32{-1, 5}},
			Tensor{DType: tfpb.DataType_DT_INT8, Shape: []int64{2}, Int64: []int64{-1, 5}}, ""},
		{"int8 content", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, TensorShape: shape(2), TensorContent: []byte{0xff, 5}},
			Tensor{DType: tfpb.DataType_DT_INT8, Shape: []int64{2}, Int64: []int64{-1, 5}}, ""},
		{"int64_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT64, TensorShape: shape(1), Int64Val: []int64{1 << 40}},
			Tensor{DType: tfpb.DataType_DT_INT64, Shape: []int64{1}, Int64: []int64{1 << 40}}, ""},
		{"uint32_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_UINT32, TensorShape: shape(1), Uint32Val: []uint32{4e9}},
			Tensor{DType: tfpb.DataType_DT_UINT32, Shape: []int64{1}, Int64: []int64{4e9}}, ""},
		{"uint64_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_UINT64, TensorShape: shape(1), Uint64Val: []uint64{1 << 63}},
			Tensor{DType: tfpb.DataType_DT_UINT64, Shape: []int64{1}, Uint64: []uint64{1 << 63}}, ""},
		{"bool_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_BOOL, TensorShape: shape(2), BoolVal: []bool{true, false}},
			Tensor{DType: tfpb.DataType_DT_BOOL, Shape: []int64{2}, Bool: []bool{true, false}}, ""},
		{"string_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_STRING, TensorShape: shape(2), StringVal: [][]byte{[]byte("a"), []byte("bc")}},
			Tensor{DType: tfpb.DataType_DT_STRING, Shape: []int64{2}, Strings: [][]byte{[]byte("a"), []byte("bc")}}, ""},
		{"half_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(3), HalfVal: []int32{0x3c00, 0xc000, 0x0001}},
			Tensor{DType: tfpb.DataType_DT_HALF, Shape: []int64{3}, Float32: []float32{1, -2, 5.9604645e-08}}, ""},
		{"bfloat16_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_BFLOAT16, TensorShape: shape(1), HalfVal: []int32{0x3fc0}},
			Tensor{DType: tfpb.DataType_DT_BFLOAT16, Shape: []int64{1}, Float32: []float32{1.5}}, ""},
		{"scomplex_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_COMPLEX64, TensorShape: shape(1), ScomplexVal: []float32{1, 2}},
			Tensor{DType: tfpb.DataType_DT_COMPLEX64, Shape: []int64{1}, Complex64: []complex64{1 + 2i}}, ""},
		{"dcomplex_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_COMPLEX128, TensorShape: shape(1), DcomplexVal: []float64{3, -4}},
			Tensor{DType: tfpb.DataType_DT_COMPLEX128, Shape: []int64{1}, Complex128: []complex128{3 - 4i}}, ""},
		{"empty field is zeros", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2)},
			Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2}, Float32: []float32{0, 0}}, ""},
		{"content too short", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2, 2), TensorContent: le32(1, 2, 3)},
			Tensor{}, "tensor_content has 12 bytes"},
		{"too many values", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), FloatVal: []float32{1, 2, 3}},
			Tensor{}, "float_val has 3 values"},
		{"negative dim", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(-1, 2)},
			Tensor{}, "negative"},
		{"huge shape", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1<<40, 1<<40)},
			Tensor{}, "more than"},
		{"string content", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_STRING, TensorShape: shape(1), TensorContent: []byte("x")},
			Tensor{}, "not valid for DT_STRING"},
		{"odd complex", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_COMPLEX64, TensorShape: shape(1), ScomplexVal: []float32{1}},
			Tensor{}, "odd"},
		{"nil", nil, Tensor{}, "missing tensor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTensor(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestTensorRows(t *testing.T) {
	tests := []struct {
		name string
		in   Tensor
		want [][]float32
	}{
		{"[2,1] float", Tensor{Shape: []int64{2, 1}, Float32: []float32{0.1, 0.9}}, [][]float32{{0.1}, {0.9}}},
		{"[2,2] int", Tensor{Shape: []int64{2, 2}, Int64: []int64{1, 2, 3, 4}}, [][]float32{{1, 2}, {3, 4}}},
		{"[3] double", Tensor{Shape: []int64{3}, Float64: []float64{1, 2, 3}}, [][]float32{{1}, {2}, {3}}},
		{"bool", Tensor{Shape: []int64{2}, Bool: []bool{true, false}}, [][]float32{{1}, {0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Rows()
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Rows() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := (&Tensor{DType: tfpb.DataType_DT_STRING, Shape: []int64{1}, Strings: [][]byte{nil}}).Rows(); err == nil {
		t.Error("string tensor gave rows")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := []Tensor{
		{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, 2}, Float32: []float32{1, -2.5, float32(math.Inf(1)), 0}},
		{DType: tfpb.DataType_DT_DOUBLE, Shape: []int64{2}, Float64: []float64{0.1, -1e300}},
		{DType: tfpb.DataType_DT_HALF, Shape: []int64{4}, Float32: []float32{1, -0.5, 65504, 6.1035156e-05}},
		{DType: tfpb.DataType_DT_BFLOAT16, Shape: []int64{2}, Float32: []float32{1, -3.5}},
		{DType: tfpb.DataType_DT_INT8, Shape: []int64{2}, Int64: []int64{-128, 127}},
		{DType: tfpb.DataType_DT_INT16, Shape: []int64{1}, Int64: []int64{-30000}},
		{DType: tfpb.DataType_DT_INT32, Shape: []int64{2, 1}, Int64: []int64{math.MinInt32, math.MaxInt32}},
		{DType: tfpb.DataType_DT_INT64, Shape: []int64{2}, Int64: []int64{math.MinInt64, math.MaxInt64}},
		{DType: tfpb.DataType_DT_UINT8, Shape: []int64{1}, Int64: []int64{255}},
		{DType: tfpb.DataType_DT_UINT16, Shape: []int64{1}, Int64: []int64{65535}},
		{DType: tfpb.DataType_DT_UINT32, Shape: []int64{1}, Int64: []int64{math.MaxUint32}},
		{DType: tfpb.DataType_DT_UINT64, Shape: []int64{1}, Uint64: []uint64{math.MaxUint64}},
		{DType: tfpb.DataType_DT_BOOL, Shape: []int64{3}, Bool: []bool{true, false, true}},
		{DType: tfpb.DataType_DT_STRING, Shape: []int64{2}, Strings: [][]byte{[]byte("a"), {0xff, 0}}},
		{DType: tfpb.DataType_DT_COMPLEX64, Shape: []int64{1}, Complex64: []complex64{complex(1, -2)}},
		{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{0, 3}, Float32: []float32{}},
	}
	var buf []byte
	for _, in := range tests {
		var p tfpb.TensorProto
		var err error
		if buf, err = Encode(&p, &in, buf); err != nil {
			t.Fatalf("%s: %v", in.DType, err)
		}
		if in.DType != tfpb.DataType_DT_STRING && len(p.TensorContent) != ContentBytes(&in) {
			t.Errorf("%s: %d content bytes, ContentBytes says %d", in.DType, len(p.TensorContent), ContentBytes(&in))
		}
		got, err := DecodeTensor(&p)
		if err != nil {
			t.Fatalf("%s: decode: %v", in.DType, err)
		}
		var typed tfpb.TensorProto
		if err := EncodeTyped(&typed, &in); err != nil {
			t.Fatalf("%s: typed: %v", in.DType, err)
		}
		if len(typed.TensorContent) > 0 {
			t.Errorf("%s: typed form used tensor_content", in.DType)
		}
		if back, err := DecodeTensor(&typed); err != nil || (in.Len() > 0 && !reflect.DeepEqual(back, got)) {
			t.Errorf("%s: typed round trip\n got %+v (%v)\nwant %+v", in.DType, back, err, got)
		}
		if in.Len() == 0 { // an empty tensor decodes without a value slice
			if got.Len() != 0 || !reflect.DeepEqual(got.Shape, in.Shape) {
				t.Errorf("empty %s: %+v", in.DType, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", in.DType, got, in)
		}
	}
	for _, bad := range []Tensor{
		{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, 2}, Float32: []float32{1}},
		{DType: tfpb.DataType_DT_INT64, Shape: []int64{1}, Float32: []float32{1}},
		{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1}, Float32: []float32{1}},
		{DType: tfpb.DataType_DT_VARIANT, Shape: []int64{1}, Int64: []int64{1}},
	} {
		var p tfpb.TensorProto
		if _, err := Encode(&p, &bad, nil); err == nil {
			t.Errorf("encoded %+v", bad)
		}
	}
}

func TestHalfRounding(t *testing.T) {
	for _, tt := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e-8, 0},
		{5.9604645e-08, 0x0001}, {float32(math.Inf(-1)), 0xfc00},
		{1 + 1.0/2048, 0x3c00}, // a tie rounds to even
		{1 + 3.0/2048, 0x3c02},
	} {
		if got := floatToHalf(tt.in); got != tt.want {
			t.Errorf("floatToHalf(%v) = %#04x, want %#04x", tt.in, got, tt.want)
		}
		if tt.want&0x7c00 != 0x7c00 && halfToFloat(tt.want) != tt.in && tt.in > 1e-7 && tt.in < 65504 && tt.in != 1+1.0/2048 && tt.in != 1+3.0/2048 {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", tt.want, halfToFloat(tt.want), tt.in)
		}
	}
	if got := floatToHalf(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("NaN became %#04x", got)
	}
}

func TestAppendRowJSON(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		o    JSONOptions
		rows []string
		all  string
	}{
		{"[N,1] float, the seed's score", Tensor{Shape: []int64{2, 1}, Float32: []float32{0.7310586, float32(math.NaN())}}, JSONOptions{}, []string{`[0.7310586]`, `[null]`}, `[[0.7310586],[null]]`},
		{"[N] scalar", Tensor{Shape: []int64{2}, Float64: []float64{0.1, math.Inf(-1)}}, JSONOptions{NonFiniteTokens: true}, []string{`0.1`, `-Infinity`}, `[0.1,-Infinity]`},
		{"[N,2,2] int", Tensor{Shape: []int64{1, 2, 2}, Int64: []int64{1, 2, 3, -4}}, JSONOptions{}, []string{`[[1,2],[3,-4]]`}, `[[[1,2],[3,-4]]]`},
		{"uint64", Tensor{Shape: []int64{1}, Uint64: []uint64{math.MaxUint64}}, JSONOptions{}, []string{`18446744073709551615`}, `[18446744073709551615]`},
		{"bool", Tensor{Shape: []int64{1, 2}, Bool: []bool{true, false}}, JSONOptions{}, []string{`[true,false]`}, `[[true,false]]`},
		{"strings", Tensor{Shape: []int64{3}, Strings: [][]byte{[]byte("a\"b\n"), {0xff}, {}}}, JSONOptions{}, []string{`"a\"b\u000a"`, `{"b64":"/w=="}`, `""`}, `["a\"b\u000a",{"b64":"/w=="},""]`},
		{"binary alias", Tensor{Shape: []int64{1}, Strings: [][]byte{[]byte("ok")}}, JSONOptions{Binary: true}, []string{`{"b64":"b2s="}`}, `[{"b64":"b2s="}]`},
		{"scalar tensor", Tensor{Shape: []int64{}, Int64: []int64{7}}, JSONOptions{}, []string{`7`}, `7`},
		{"empty inner", Tensor{Shape: []int64{2, 0}, Float32: []float32{}}, JSONOptions{}, []string{`[]`, `[]`}, `[[],[]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for r, want := range tt.rows {
				if got := string(AppendRowJSON(nil, &tt.t, r, tt.o)); got != want {
					t.Errorf("row %d = %s, want %s", r, got, want)
				}
			}
			if got := string(AppendJSON(nil, &tt.t, tt.o)); got != tt.all {
				t.Errorf("whole = %s, want %s", got, tt.all)
			}
		})
	}
	if !BinaryOutput("image_bytes") || BinaryOutput("label") {
		t.Error("BinaryOutput: TF's rule is the _bytes suffix")
	}
}
