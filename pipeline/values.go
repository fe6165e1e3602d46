package pipeline

// Values is one record parsed for a Schema: its id and, per input, its
// elements in row-major order and its inner shape. Elements live in one
// column per Kind, so a record costs no allocation once its Values has been
// used for a record of the same size (the worker recycles them). Strings
// alias the record's bytes when they need no unescaping.
type Values struct {
	// ID is the raw JSON token of the id field (a string with its quotes,
	// or a number), copied verbatim into the result; nil when absent, null,
	// or the value format is raw. It aliases the record.
	ID []byte

	float32s []float32
	float64s []float64
	int64s   []int64
	bools    []bool
	strs     [][]byte
	dims     []int64 // every input's inner shape, in input order
	spans    []span  // per input
	scratch  []byte  // unescaped and base64-decoded strings
	seen     []bool  // per input, while parsing
}

// span locates one input's elements in its column and its shape in dims.
type span struct {
	off, n       int
	dimOff, rank int
}

func (v *Values) reset(inputs int) {
	v.ID = nil
	v.float32s, v.float64s, v.int64s, v.bools = v.float32s[:0], v.float64s[:0], v.int64s[:0], v.bools[:0]
	clear(v.strs) // drop references to the previous record's bytes
	v.strs, v.dims, v.scratch = v.strs[:0], v.dims[:0], v.scratch[:0]
	if cap(v.spans) < inputs {
		v.spans, v.seen = make([]span, inputs), make([]bool, inputs)
	}
	v.spans, v.seen = v.spans[:inputs], v.seen[:inputs]
	clear(v.seen)
}

// Float32s are input i's elements when its Kind is KindFloat32.
func (v *Values) Float32s(i int) []float32 {
	s := v.spans[i]
	return v.float32s[s.off : s.off+s.n]
}

// Float64s are input i's elements when its Kind is KindFloat64.
func (v *Values) Float64s(i int) []float64 {
	s := v.spans[i]
	return v.float64s[s.off : s.off+s.n]
}

// Int64s are input i's elements when its Kind is KindInt64 (DT_UINT64 as
// its bits: convert with uint64(x)).
func (v *Values) Int64s(i int) []int64 {
	s := v.spans[i]
	return v.int64s[s.off : s.off+s.n]
}

// Bools are input i's elements when its Kind is KindBool.
func (v *Values) Bools(i int) []bool {
	s := v.spans[i]
	return v.bools[s.off : s.off+s.n]
}

// Strings are input i's elements when its Kind is KindString. They alias
// the record (or the Values): copy them to keep them past the record.
func (v *Values) Strings(i int) [][]byte {
	s := v.spans[i]
	return v.strs[s.off : s.off+s.n]
}

// Dims is input i's shape in this record without the batch dimension:
// [] for a scalar input, [32] for [-1, 32].
func (v *Values) Dims(i int) []int64 {
	s := v.spans[i]
	return v.dims[s.dimOff : s.dimOff+s.rank]
}

// SameShapes reports whether two records of one schema can share a batch:
// every input has the same inner shape in both.
func (v *Values) SameShapes(o *Values) bool {
	if len(v.dims) != len(o.dims) {
		return false
	}
	for i := range v.spans {
		if v.spans[i].rank != o.spans[i].rank {
			return false
		}
	}
	for i := range v.dims {
		if v.dims[i] != o.dims[i] {
			return false
		}
	}
	return true
}
