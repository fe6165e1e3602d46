package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/inferops/inferops/infer/tfpb"
)

// Tensor is a decoded TensorProto. Exactly one value slice is filled,
// chosen by DType:
//
//	Float32    DT_FLOAT, DT_HALF, DT_BFLOAT16 (widened)
//	Float64    DT_DOUBLE
//	Int64      DT_INT8/16/32/64, DT_UINT8/16/32, DT_QINT*/QUINT*
//	Uint64     DT_UINT64
//	Bool       DT_BOOL
//	Strings    DT_STRING
//	Complex64  DT_COMPLEX64;  Complex128 DT_COMPLEX128
//
// Values are row-major; len equals the product of Shape.
type Tensor struct {
	DType tfpb.DataType
	Shape []int64

	Float32    []float32
	Float64    []float64
	Int64      []int64
	Uint64     []uint64
	Bool       []bool
	Strings    [][]byte
	Complex64  []complex64
	Complex128 []complex128
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	switch {
	case t.Float32 != nil:
		return len(t.Float32)
	case t.Float64 != nil:
		return len(t.Float64)
	case t.Int64 != nil:
		return len(t.Int64)
	case t.Uint64 != nil:
		return len(t.Uint64)
	case t.Bool != nil:
		return len(t.Bool)
	case t.Strings != nil:
		return len(t.Strings)
	case t.Complex64 != nil:
		return len(t.Complex64)
	case t.Complex128 != nil:
		return len(t.Complex128)
	}
	return 0
}

// AsFloat32 returns every element as float32, converting numeric types; it
// shares the slice for DT_FLOAT. Strings and complex numbers are an error.
func (t *Tensor) AsFloat32() ([]float32, error) {
	switch {
	case t.Float32 != nil:
		return t.Float32, nil
	case t.Float64 != nil:
		out := make([]float32, len(t.Float64))
		for i, v := range t.Float64 {
			out[i] = float32(v)
		}
		return out, nil
	case t.Int64 != nil:
		out := make([]float32, len(t.Int64))
		for i, v := range t.Int64 {
			out[i] = float32(v)
		}
		return out, nil
	case t.Uint64 != nil:
		out := make([]float32, len(t.Uint64))
		for i, v := range t.Uint64 {
			out[i] = float32(v)
		}
		return out, nil
	case t.Bool != nil:
		out := make([]float32, len(t.Bool))
		for i, v := range t.Bool {
			if v {
				out[i] = 1
			}
		}
		return out, nil
	case t.Len() == 0:
		return []float32{}, nil
	}
	return nil, fmt.Errorf("tensor of %s is not numeric", t.DType)
}

// Rows splits the tensor into its first dimension: rows of equal width
// (a [N] tensor gives N rows of width 1). The rows share one backing array.
func (t *Tensor) Rows() ([][]float32, error) {
	vals, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	if len(t.Shape) == 0 {
		return [][]float32{vals}, nil
	}
	n := int(t.Shape[0])
	if n == 0 {
		return [][]float32{}, nil
	}
	if n < 0 || len(vals)%n != 0 {
		return nil, fmt.Errorf("tensor shape %v does not match its %d values", t.Shape, len(vals))
	}
	w := len(vals) / n
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = vals[i*w : (i+1)*w : (i+1)*w]
	}
	return rows, nil
}

// ShapeOf reads a TensorShapeProto; unknown rank gives nil.
func ShapeOf(s *tfpb.TensorShapeProto) []int64 {
	if s == nil || s.UnknownRank {
		return nil
	}
	out := make([]int64, len(s.Dim))
	for i, d := range s.Dim {
		out[i] = d.Size
	}
	return out
}

// ShapeProto builds a TensorShapeProto.
func ShapeProto(dims ...int64) *tfpb.TensorShapeProto {
	s := &tfpb.TensorShapeProto{Dim: make([]*tfpb.TensorShapeProto_Dim, len(dims))}
	for i, d := range dims {
		s.Dim[i] = &tfpb.TensorShapeProto_Dim{Size: d}
	}
	return s
}

// maxElements bounds what one decoded tensor may claim, so a hostile shape
// cannot make us allocate terabytes (2^31 elements is TF's own practical bound
// for a single protobuf).
const maxElements = 1 << 31

// elements multiplies the dims, rejecting negative sizes and overflow.
func elements(shape []int64) (int, error) { return elementsMax(shape, maxElements) }

func elementsMax(shape []int64, limit int64) (int, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has an unknown (negative) dimension", shape)
		}
		if d != 0 && n > limit/d {
			return 0, fmt.Errorf("shape %v has more than %d elements", shape, limit)
		}
		n *= d
	}
	return int(n), nil
}

// littleEndian: tensor_content is little-endian, so on such hosts (all
// that RHEL 8 runs on but s390x) it can be used in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// elemSize is the tensor_content width of fixed-size types (0: none).
func elemSize(dt tfpb.DataType) int {
	switch dt {
	case tfpb.DataType_DT_INT8, tfpb.DataType_DT_UINT8, tfpb.DataType_DT_BOOL,
		tfpb.DataType_DT_QINT8, tfpb.DataType_DT_QUINT8:
		return 1
	case tfpb.DataType_DT_INT16, tfpb.DataType_DT_UINT16, tfpb.DataType_DT_HALF,
		tfpb.DataType_DT_BFLOAT16, tfpb.DataType_DT_QINT16, tfpb.DataType_DT_QUINT16:
		return 2
	case tfpb.DataType_DT_FLOAT, tfpb.DataType_DT_INT32, tfpb.DataType_DT_UINT32, tfpb.DataType_DT_QINT32:
		return 4
	case tfpb.DataType_DT_DOUBLE, tfpb.DataType_DT_INT64, tfpb.DataType_DT_UINT64, tfpb.DataType_DT_COMPLEX64:
		return 8
	case tfpb.DataType_DT_COMPLEX128:
		return 16
	}
	return 0
}

// DecodeTensor reads every representation TF uses: tensor_content for
// fixed-size types, or the typed *_val field, where (version_number 0
// semantics) a single value fills the whole shape. An inconsistent tensor is
// an error, never a panic: the server runs this on untrusted input.
//
// The values may share memory with p (DT_FLOAT tensor_content on
// little-endian hosts, and typed fields of the right length): treat p as
// read-only while the Tensor is in use.
func DecodeTensor(p *tfpb.TensorProto) (Tensor, error) { return DecodeTensorMax(p, maxElements) }

// DecodeTensorMax is DecodeTensor refusing shapes of more than limit
// elements. Servers pass a bound derived from their message size limit: a
// 20-byte tensor with one float_val and a huge shape would otherwise make
// them allocate gigabytes (TF's single-value fill rule).
func DecodeTensorMax(p *tfpb.TensorProto, limit int64) (Tensor, error) {
	if p == nil {
		return Tensor{}, fmt.Errorf("missing tensor")
	}
	t := Tensor{DType: p.Dtype, Shape: ShapeOf(p.TensorShape)}
	if p.TensorShape == nil || p.TensorShape.UnknownRank {
		t.Shape = []int64{}
	}
	n, err := elementsMax(t.Shape, min(limit, maxElements))
	if err != nil {
		return Tensor{}, err
	}
	if len(p.TensorContent) > 0 {
		return t, decodeContent(&t, p.TensorContent, n)
	}
	return t, decodeTyped(&t, p, n)
}

func decodeContent(t *Tensor, b []byte, n int) error {
	sz := elemSize(t.DType)
	if sz == 0 {
		return fmt.Errorf("tensor_content is not valid for %s", t.DType)
	}
	if len(b) != n*sz {
		return fmt.Errorf("tensor_content has %d bytes, shape %v of %s needs %d", len(b), t.Shape, t.DType, n*sz)
	}
	le := binary.LittleEndian
	switch t.DType {
	case tfpb.DataType_DT_FLOAT:
		if littleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 == 0 {
			// The wire bytes already are the floats: view them instead of
			// copying (the hot path of every Predict the server decodes).
			t.Float32 = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n)
			return nil
		}
		t.Float32 = make([]float32, n)
		for i := range t.Float32 {
			t.Float32[i] = math.Float32frombits(le.Uint32(b[i*4:]))
		}
	case tfpb.DataType_DT_HALF:
		t.Float32 = make([]float32, n)
		for i := range t.Float32 {
			t.Float32[i] = halfToFloat(le.Uint16(b[i*2:]))
		}
	case tfpb.DataType_DT_BFLOAT16:
		t.Float32 = make([]float32, n)
		for i := range t.Float32 {
			t.Float32[i] = math.Float32frombits(uint32(le.Uint16(b[i*2:])) << 16)
		}
	case tfpb.DataType_DT_DOUBLE:
		t.Float64 = make([]float64, n)
		for i := range t.Float64 {
			t.Float64[i] = math.Float64frombits(le.Uint64(b[i*8:]))
		}
	case tfpb.DataType_DT_BOOL:
		t.Bool = make([]bool, n)
		for i := range t.Bool {
			t.Bool[i] = b[i] != 0
		}
	case tfpb.DataType_DT_UINT64:
		t.Uint64 = make([]uint64, n)
		for i := range t.Uint64 {
			t.Uint64[i] = le.Uint64(b[i*8:])
		}
	case tfpb.DataType_DT_COMPLEX64:
		t.Complex64 = make([]complex64, n)
		for i := range t.Complex64 {
			t.Complex64[i] = complex(math.Float32frombits(le.Uint32(b[i*8:])), math.Float32frombits(le.Uint32(b[i*8+4:])))
		}
	case tfpb.DataType_DT_COMPLEX128:
		t.Complex128 = make([]complex128, n)
		for i := range t.Complex128 {
			t.Complex128[i] = complex(math.Float64frombits(le.Uint64(b[i*16:])), math.Float64frombits(le.Uint64(b[i*16+8:])))
		}
	default: // integer types
		t.Int64 = make([]int64, n)
		for i := range t.Int64 {
			switch t.DType {
			case tfpb.DataType_DT_INT8, tfpb.DataType_DT_QINT8:
				t.Int64[i] = int64(int8(b[i]))
			case tfpb.DataType_DT_UINT8, tfpb.DataType_DT_QUINT8:
				t.Int64[i] = int64(b[i])
			case tfpb.DataType_DT_INT16, tfpb.DataType_DT_QINT16:
				t.Int64[i] = int64(int16(le.Uint16(b[i*2:])))
			case tfpb.DataType_DT_UINT16, tfpb.DataType_DT_QUINT16:
				t.Int64[i] = int64(le.Uint16(b[i*2:]))
			case tfpb.DataType_DT_INT32, tfpb.DataType_DT_QINT32:
				t.Int64[i] = int64(int32(le.Uint32(b[i*4:])))
			case tfpb.DataType_DT_UINT32:
				t.Int64[i] = int64(le.Uint32(b[i*4:]))
			case tfpb.DataType_DT_INT64:
				t.Int64[i] = int64(le.Uint64(b[i*8:]))
			}
		}
	}
	return nil
}

// fill expands a typed field to n elements: the values as given, or one
// value repeated (TF's version-0 rule), or zero values for an empty field.
func fill[S ~[]E, E any](vals S, n int, field string) (S, error) {
	switch {
	case len(vals) == n:
		return vals, nil
	case len(vals) == 1:
		out := make(S, n)
		for i := range out {
			out[i] = vals[0]
		}
		return out, nil
	case len(vals) == 0:
		return make(S, n), nil
	}
	return nil, fmt.Errorf("%s has %d values, the shape needs %d", field, len(vals), n)
}

func decodeTyped(t *Tensor, p *tfpb.TensorProto, n int) error {
	var err error
	switch t.DType {
	case tfpb.DataType_DT_FLOAT:
		t.Float32, err = fill(p.FloatVal, n, "float_val")
	case tfpb.DataType_DT_DOUBLE:
		t.Float64, err = fill(p.DoubleVal, n, "double_val")
	case tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
		var bits []int32
		if bits, err = fill(p.HalfVal, n, "half_val"); err == nil {
			t.Float32 = make([]float32, n)
			for i, b := range bits {
				if t.DType == tfpb.DataType_DT_HALF {
					t.Float32[i] = halfToFloat(uint16(b))
				} else {
					t.Float32[i] = math.Float32frombits(uint32(uint16(b)) << 16)
				}
			}
		}
	case tfpb.DataType_DT_INT32, tfpb.DataType_DT_INT16, tfpb.DataType_DT_INT8,
		tfpb.DataType_DT_UINT8, tfpb.DataType_DT_UINT16, tfpb.DataType_DT_QINT8,
		tfpb.DataType_DT_QUINT8, tfpb.DataType_DT_QINT16, tfpb.DataType_DT_QUINT16, tfpb.DataType_DT_QINT32:
		var v []int32
		if v, err = fill(p.IntVal, n, "int_val"); err == nil {
			t.Int64 = make([]int64, n)
			for i, x := range v {
				t.Int64[i] = int64(x)
			}
		}
	case tfpb.DataType_DT_INT64:
		t.Int64, err = fill(p.Int64Val, n, "int64_val")
	case tfpb.DataType_DT_UINT32:
		var v []uint32
		if v, err = fill(p.Uint32Val, n, "uint32_val"); err == nil {
			t.Int64 = make([]int64, n)
			for i, x := range v {
				t.Int64[i] = int64(x)
			}
		}
	case tfpb.DataType_DT_UINT64:
		t.Uint64, err = fill(p.Uint64Val, n, "uint64_val")
	case tfpb.DataType_DT_BOOL:
		t.Bool, err = fill(p.BoolVal, n, "bool_val")
	case tfpb.DataType_DT_STRING:
		t.Strings, err = fill(p.StringVal, n, "string_val")
	case tfpb.DataType_DT_COMPLEX64:
		if len(p.ScomplexVal)%2 != 0 {
			return fmt.Errorf("scomplex_val has an odd number of parts")
		}
		pairs := make([]complex64, len(p.ScomplexVal)/2)
		for i := range pairs {
			pairs[i] = complex(p.ScomplexVal[2*i], p.ScomplexVal[2*i+1])
		}
		t.Complex64, err = fill(pairs, n, "scomplex_val")
	case tfpb.DataType_DT_COMPLEX128:
		if len(p.DcomplexVal)%2 != 0 {
			return fmt.Errorf("dcomplex_val has an odd number of parts")
		}
		pairs := make([]complex128, len(p.DcomplexVal)/2)
		for i := range pairs {
			pairs[i] = complex(p.DcomplexVal[2*i], p.DcomplexVal[2*i+1])
		}
		t.Complex128, err = fill(pairs, n, "dcomplex_val")
	default:
		return fmt.Errorf("cannot decode a tensor of %s", t.DType)
	}
	return err
}

// halfToFloat widens an IEEE 754 binary16 bit pattern.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		frac &= 0x3ff
		return math.Float32frombits(sign | e<<23 | frac<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
