package model

import (
	"encoding/binary"
	"fmt"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
)

// Encoding is how an input's values become features.
type Encoding uint8

const (
	// Dense inputs are features as they are (numbers and booleans as
	// float32): DT_FLOAT [-1, k] contributes k features. Every inner
	// dimension must be known.
	Dense Encoding = iota
	// Hashed inputs (integers and strings: ids, categories, queries) look
	// each value up in an embedding table of Buckets rows of Dim floats by
	// its 64-bit FNV-1a hash, and contribute the mean of those rows (zeros
	// when the input has no values in a row), so [-1] and [-1, -1] both work.
	Hashed
)

func (e Encoding) String() string {
	switch e {
	case Dense:
		return "dense"
	case Hashed:
		return "hashed"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// Input is one signature input of a model.
type Input struct {
	Name  string
	DType tfpb.DataType
	Shape []int64 // batch first, e.g. [-1] or [-1, 32]
	Enc   Encoding
	// Hashed: the table, row-major [Buckets][Dim].
	Buckets, Dim int
	Table        []float32
}

// Output is one signature output: Width columns of the last layer from
// Offset, shaped [-1, Width], DT_FLOAT.
type Output struct {
	Name          string
	Offset, Width int
}

// DenseInput is a DT_FLOAT [-1, width] input fed to the network as is, the
// shape of my_model's "features".
func DenseInput(name string, width int) Input {
	return Input{Name: name, DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, int64(width)}, Enc: Dense}
}

// Features is how many features the input contributes to a row.
func (in *Input) Features() int {
	if in.Enc == Hashed {
		return in.Dim
	}
	n := 1
	for _, d := range in.Shape[1:] {
		n *= int(d)
	}
	return n
}

// Direct reports the seed's shape: one dense DT_FLOAT input whose values
// are the network's row as they are, so a request's tensor needs no
// featurizing at all.
func (m *Model) Direct() bool {
	return len(m.Inputs) == 1 && m.Inputs[0].Enc == Dense && m.Inputs[0].DType == tfpb.DataType_DT_FLOAT
}

func (m *Model) validateIO() error {
	if len(m.Inputs) == 0 || len(m.Inputs) > maxIO || len(m.Outputs) == 0 || len(m.Outputs) > maxIO {
		return fmt.Errorf("model has %d inputs and %d outputs, want 1..%d of each", len(m.Inputs), len(m.Outputs), maxIO)
	}
	seen := map[string]bool{}
	width := 0
	for _, in := range m.Inputs {
		if in.Name == "" || seen[in.Name] {
			return fmt.Errorf("input name %q is empty or repeated", in.Name)
		}
		seen[in.Name] = true
		if len(in.Shape) == 0 || len(in.Shape) > maxRank || in.Shape[0] != -1 {
			return fmt.Errorf("input %q has shape %v; want [-1, ...] of rank up to %d", in.Name, in.Shape, maxRank)
		}
		switch in.Enc {
		case Dense:
			if !denseType(in.DType) {
				return fmt.Errorf("input %q: a dense input is a number or a bool, not %s", in.Name, in.DType)
			}
			n := int64(1)
			for _, d := range in.Shape[1:] {
				if d <= 0 || d > MaxParams || n*d > MaxParams {
					return fmt.Errorf("input %q has shape %v; a dense input needs every inner size known and at most %d features", in.Name, in.Shape, MaxParams)
				}
				n *= d
			}
		case Hashed:
			if !hashedType(in.DType) {
				return fmt.Errorf("input %q: a hashed input is an integer or a string, not %s", in.Name, in.DType)
			}
			for _, d := range in.Shape[1:] {
				if d < -1 || d == 0 {
					return fmt.Errorf("input %q has shape %v", in.Name, in.Shape)
				}
			}
			if in.Buckets <= 0 || in.Dim <= 0 || in.Buckets > MaxParams/in.Dim || len(in.Table) != in.Buckets*in.Dim {
				return fmt.Errorf("input %q: %d table values for %d buckets of %d", in.Name, len(in.Table), in.Buckets, in.Dim)
			}
		default:
			return fmt.Errorf("input %q: unknown %v", in.Name, in.Enc)
		}
		width += in.Features()
	}
	if width != m.InputWidth() {
		return fmt.Errorf("the inputs give %d features, the first layer takes %d", width, m.InputWidth())
	}
	seen = map[string]bool{}
	for _, o := range m.Outputs {
		if o.Name == "" || seen[o.Name] {
			return fmt.Errorf("output name %q is empty or repeated", o.Name)
		}
		seen[o.Name] = true
		if o.Offset < 0 || o.Width <= 0 || o.Offset+o.Width > m.OutputWidth() {
			return fmt.Errorf("output %q is columns %d..%d of a last layer of %d", o.Name, o.Offset, o.Offset+o.Width, m.OutputWidth())
		}
	}
	return nil
}

// maxIO and maxRank bound what a file may declare.
const (
	maxIO   = 256
	maxRank = 8
)

func denseType(d tfpb.DataType) bool {
	switch d {
	case tfpb.DataType_DT_FLOAT, tfpb.DataType_DT_DOUBLE, tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16, tfpb.DataType_DT_BOOL:
		return true
	}
	return intType(d)
}

func hashedType(d tfpb.DataType) bool { return d == tfpb.DataType_DT_STRING || intType(d) }

func intType(d tfpb.DataType) bool {
	switch d {
	case tfpb.DataType_DT_INT8, tfpb.DataType_DT_INT16, tfpb.DataType_DT_INT32, tfpb.DataType_DT_INT64,
		tfpb.DataType_DT_UINT8, tfpb.DataType_DT_UINT16, tfpb.DataType_DT_UINT32, tfpb.DataType_DT_UINT64:
		return true
	}
	return false
}

// Featurize writes rows of the network's input (rows x InputWidth, in
// input order) from decoded tensors keyed by input name, checked against
// the signature by the caller: dtype and rows agree, dense sizes match.
func (m *Model) Featurize(dst []float32, inputs map[string]*tensor.Tensor, rows int) error {
	w := m.InputWidth()
	if len(dst) != rows*w {
		return fmt.Errorf("featurize: %d rows need %d values, got %d", rows, rows*w, len(dst))
	}
	off := 0
	for i := range m.Inputs {
		in := &m.Inputs[i]
		t := inputs[in.Name]
		if t == nil {
			return fmt.Errorf("featurize: no input %q", in.Name)
		}
		n := in.Features()
		if in.Enc == Dense {
			vals, err := t.AsFloat32()
			if err != nil || len(vals) != rows*n {
				return fmt.Errorf("featurize: input %q has %d values for %d rows of %d", in.Name, len(vals), rows, n)
			}
			for r := range rows {
				copy(dst[r*w+off:r*w+off+n], vals[r*n:(r+1)*n])
			}
		} else if err := in.embed(dst, w, off, t, rows); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// embed writes the mean embedding row of each row's values.
func (in *Input) embed(dst []float32, w, off int, t *tensor.Tensor, rows int) error {
	total := t.Len()
	if rows <= 0 || total%rows != 0 {
		return fmt.Errorf("featurize: input %q has %d values for %d rows", in.Name, total, rows)
	}
	per := total / rows
	var buf [8]byte
	for r := range rows {
		out := dst[r*w+off : r*w+off+in.Dim]
		clear(out)
		for k := r * per; k < (r+1)*per; k++ {
			var h uint64
			switch {
			case t.Strings != nil:
				h = fnv1a(t.Strings[k])
			case t.Int64 != nil:
				binary.LittleEndian.PutUint64(buf[:], uint64(t.Int64[k]))
				h = fnv1a(buf[:])
			case t.Uint64 != nil:
				binary.LittleEndian.PutUint64(buf[:], t.Uint64[k])
				h = fnv1a(buf[:])
			default:
				return fmt.Errorf("featurize: input %q is not integers or strings", in.Name)
			}
			row := in.Table[int(h%uint64(in.Buckets))*in.Dim:][:in.Dim]
			for j, v := range row {
				out[j] += v
			}
		}
		if per > 1 {
			inv := 1 / float32(per)
			for j := range out {
				out[j] *= inv
			}
		}
	}
	return nil
}

// fnv1a is 64-bit FNV-1a: simple, fully specified, the same everywhere.
func fnv1a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
