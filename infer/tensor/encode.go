package tensor

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/inferops/inferops/infer/tfpb"
)

// ContentBytes is the tensor_content size of t (0 for strings, which go in
// string_val), for callers that size one buffer for several tensors.
func ContentBytes(t *Tensor) int { return elemSize(t.DType) * t.Len() }

// Encode fills p with t in the compact form requests use: fixed-size types
// as little-endian tensor_content appended to buf (4 bytes a float, no
// varints), strings as string_val sharing t's bytes. It returns buf grown,
// so callers can pool it; p.TensorContent aliases it until then. The value
// slice of t's dtype must hold exactly the shape's elements:
//
//	Float32    DT_FLOAT, DT_HALF, DT_BFLOAT16 (narrowed, round to nearest even)
//	Float64    DT_DOUBLE
//	Int64      DT_INT8/16/32/64, DT_UINT8/16/32 (truncated to the width)
//	Uint64     DT_UINT64
//	Bool       DT_BOOL;  Strings DT_STRING;  Complex64/128 DT_COMPLEX64/128
func Encode(p *tfpb.TensorProto, t *Tensor, buf []byte) ([]byte, error) {
	n, err := elements(t.Shape)
	if err != nil {
		return buf, err
	}
	p.Dtype = t.DType
	p.TensorShape = ShapeProto(t.Shape...)
	p.TensorContent, p.StringVal = nil, nil
	if got := t.Len(); got != n {
		return buf, fmt.Errorf("%s tensor of shape %v holds %d values, the shape needs %d", t.DType, t.Shape, got, n)
	}
	if t.DType == tfpb.DataType_DT_STRING {
		if t.Strings == nil && n > 0 {
			return buf, fmt.Errorf("DT_STRING tensor has no strings")
		}
		p.StringVal = t.Strings
		return buf, nil
	}
	sz := elemSize(t.DType)
	if sz == 0 {
		return buf, fmt.Errorf("cannot encode a tensor of %s", t.DType)
	}
	off := len(buf)
	le := binary.LittleEndian
	mismatch := fmt.Errorf("%s tensor has its values in the wrong field", t.DType)
	switch t.DType {
	case tfpb.DataType_DT_FLOAT:
		if t.Float32 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Float32 {
			buf = le.AppendUint32(buf, math.Float32bits(v))
		}
	case tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
		if t.Float32 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Float32 {
			if t.DType == tfpb.DataType_DT_HALF {
				buf = le.AppendUint16(buf, floatToHalf(v))
			} else {
				buf = le.AppendUint16(buf, floatToBfloat16(v))
			}
		}
	case tfpb.DataType_DT_DOUBLE:
		if t.Float64 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Float64 {
			buf = le.AppendUint64(buf, math.Float64bits(v))
		}
	case tfpb.DataType_DT_BOOL:
		if t.Bool == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Bool {
			b := byte(0)
			if v {
				b = 1
			}
			buf = append(buf, b)
		}
	case tfpb.DataType_DT_UINT64:
		if t.Uint64 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Uint64 {
			buf = le.AppendUint64(buf, v)
		}
	case tfpb.DataType_DT_COMPLEX64:
		if t.Complex64 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Complex64 {
			buf = le.AppendUint32(buf, math.Float32bits(real(v)))
			buf = le.AppendUint32(buf, math.Float32bits(imag(v)))
		}
	case tfpb.DataType_DT_COMPLEX128:
		if t.Complex128 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Complex128 {
			buf = le.AppendUint64(buf, math.Float64bits(real(v)))
			buf = le.AppendUint64(buf, math.Float64bits(imag(v)))
		}
	default: // integer types
		if t.Int64 == nil && n > 0 {
			return buf, mismatch
		}
		for _, v := range t.Int64 {
			switch sz {
			case 1:
				buf = append(buf, byte(v))
			case 2:
				buf = le.AppendUint16(buf, uint16(v))
			case 4:
				buf = le.AppendUint32(buf, uint32(v))
			default:
				buf = le.AppendUint64(buf, uint64(v))
			}
		}
	}
	p.TensorContent = buf[off:len(buf):len(buf)]
	return buf, nil
}

// floatToHalf narrows to IEEE 754 binary16, rounding to nearest even;
// beyond 65504 is infinity, as in TF's Eigen::half.
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf, NaN (keep it a NaN)
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f: // overflow
		return sign | 0x7c00
	case exp-127+15 <= 0: // subnormal half or zero
		if exp-127+15 < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - (exp - 127 + 15))
		half := uint16(mant >> shift)
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | half
	}
	half := uint16(exp-127+15)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is right (up to Inf)
	}
	return sign | half
}

// floatToBfloat16 keeps the top 16 bits, rounding to nearest even.
func floatToBfloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN stays NaN
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// EncodeTyped fills p with t in the typed *_val fields, the form TF
// Serving answers in by default (kAsProtoField): float_val shares t's
// slice; other widths are converted.
func EncodeTyped(p *tfpb.TensorProto, t *Tensor) error {
	n, err := elements(t.Shape)
	if err != nil {
		return err
	}
	if t.Len() != n {
		return fmt.Errorf("%s tensor of shape %v holds %d values, the shape needs %d", t.DType, t.Shape, t.Len(), n)
	}
	*p = tfpb.TensorProto{Dtype: t.DType, TensorShape: ShapeProto(t.Shape...)}
	switch t.DType {
	case tfpb.DataType_DT_FLOAT:
		p.FloatVal = t.Float32
	case tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
		p.HalfVal = make([]int32, len(t.Float32))
		for i, v := range t.Float32 {
			if t.DType == tfpb.DataType_DT_HALF {
				p.HalfVal[i] = int32(floatToHalf(v))
			} else {
				p.HalfVal[i] = int32(floatToBfloat16(v))
			}
		}
	case tfpb.DataType_DT_DOUBLE:
		p.DoubleVal = t.Float64
	case tfpb.DataType_DT_INT64:
		p.Int64Val = t.Int64
	case tfpb.DataType_DT_INT32, tfpb.DataType_DT_INT16, tfpb.DataType_DT_INT8, tfpb.DataType_DT_UINT8, tfpb.DataType_DT_UINT16:
		p.IntVal = make([]int32, len(t.Int64))
		for i, v := range t.Int64 {
			p.IntVal[i] = int32(v)
		}
	case tfpb.DataType_DT_UINT32:
		p.Uint32Val = make([]uint32, len(t.Int64))
		for i, v := range t.Int64 {
			p.Uint32Val[i] = uint32(v)
		}
	case tfpb.DataType_DT_UINT64:
		p.Uint64Val = t.Uint64
	case tfpb.DataType_DT_BOOL:
		p.BoolVal = t.Bool
	case tfpb.DataType_DT_STRING:
		p.StringVal = t.Strings
	case tfpb.DataType_DT_COMPLEX64:
		for _, v := range t.Complex64 {
			p.ScomplexVal = append(p.ScomplexVal, real(v), imag(v))
		}
	case tfpb.DataType_DT_COMPLEX128:
		for _, v := range t.Complex128 {
			p.DcomplexVal = append(p.DcomplexVal, real(v), imag(v))
		}
	default:
		return fmt.Errorf("cannot encode a tensor of %s", t.DType)
	}
	return nil
}
