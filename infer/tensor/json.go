package tensor

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/inferops/inferops/pipeline"
)

// JSONOptions choose between the two JSON writers that read tensors: TF
// Serving's REST responses and the worker's result records.
type JSONOptions struct {
	// NonFiniteTokens writes NaN, Infinity and -Infinity as RapidJSON does
	// (TF's REST API); otherwise they are null, so the output stays JSON.
	NonFiniteTokens bool
	// Binary writes strings as {"b64": "..."}: TF does it for outputs whose
	// alias ends in "_bytes" (BinaryOutput). Strings that are not UTF-8 are
	// always written so, or the JSON would be broken.
	Binary bool
}

// BinaryOutput is TF Serving's rule for which string outputs are base64.
func BinaryOutput(alias string) bool { return strings.HasSuffix(alias, "_bytes") }

// AppendRowJSON writes row r of t (its first dimension is the batch) in
// TF Serving's row format: a bare value for a [N] tensor, nested lists for
// the inner dimensions of [N, ...]. A tensor without dimensions is one row.
func AppendRowJSON(dst []byte, t *Tensor, row int, o JSONOptions) []byte {
	if len(t.Shape) == 0 {
		return appendElem(dst, t, 0, o)
	}
	inner := t.Shape[1:]
	n := 1
	for _, d := range inner {
		n *= int(d)
	}
	return appendNested(dst, t, inner, row*n, o)
}

// AppendJSON writes the whole tensor as nested lists (TF's columnar
// "outputs" form).
func AppendJSON(dst []byte, t *Tensor, o JSONOptions) []byte {
	return appendNested(dst, t, t.Shape, 0, o)
}

// appendNested writes the elements from off in the given shape.
func appendNested(dst []byte, t *Tensor, shape []int64, off int, o JSONOptions) []byte {
	switch {
	case len(shape) == 0:
		return appendElem(dst, t, off, o)
	case len(shape) == 1 && t.Float32 != nil:
		// The innermost list of floats, every result's [N, k] scores:
		// one loop, no per-element dispatch.
		dst = append(dst, '[')
		for i, v := range t.Float32[off : off+int(shape[0])] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendFloat(dst, float64(v), 32, o)
		}
		return append(dst, ']')
	}
	step := 1
	for _, d := range shape[1:] {
		step *= int(d)
	}
	dst = append(dst, '[')
	for i := range int(shape[0]) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendNested(dst, t, shape[1:], off+i*step, o)
	}
	return append(dst, ']')
}

func appendElem(dst []byte, t *Tensor, i int, o JSONOptions) []byte {
	switch {
	case t.Float32 != nil:
		return appendFloat(dst, float64(t.Float32[i]), 32, o)
	case t.Float64 != nil:
		return appendFloat(dst, t.Float64[i], 64, o)
	case t.Int64 != nil:
		return strconv.AppendInt(dst, t.Int64[i], 10)
	case t.Uint64 != nil:
		return strconv.AppendUint(dst, t.Uint64[i], 10)
	case t.Bool != nil:
		return strconv.AppendBool(dst, t.Bool[i])
	case t.Strings != nil:
		return appendString(dst, t.Strings[i], o)
	case t.Complex64 != nil:
		dst = append(dst, '[')
		dst = appendFloat(dst, float64(real(t.Complex64[i])), 32, o)
		dst = append(dst, ',')
		dst = appendFloat(dst, float64(imag(t.Complex64[i])), 32, o)
		return append(dst, ']')
	case t.Complex128 != nil:
		dst = append(dst, '[')
		dst = appendFloat(dst, real(t.Complex128[i]), 64, o)
		dst = append(dst, ',')
		dst = appendFloat(dst, imag(t.Complex128[i]), 64, o)
		return append(dst, ']')
	}
	return append(dst, "null"...)
}

// appendFloat writes the shortest decimal that reads back as v at its
// precision.
func appendFloat(dst []byte, f float64, bits int, o JSONOptions) []byte {
	switch {
	case !math.IsNaN(f) && !math.IsInf(f, 0):
		return strconv.AppendFloat(dst, f, 'g', -1, bits)
	case !o.NonFiniteTokens:
		return append(dst, "null"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case f > 0:
		return append(dst, "Infinity"...)
	}
	return append(dst, "-Infinity"...)
}

func appendString(dst []byte, s []byte, o JSONOptions) []byte {
	if o.Binary || !utf8.Valid(s) {
		dst = append(dst, `{"b64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, s)
		return append(dst, `"}`...)
	}
	return pipeline.AppendJSONString(dst, s)
}
