package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"

	"github.com/inferops/inferops/infer/tfpb"
)

// FileName is the model file inside a version directory.
const FileName = "model.iom"

// The two versions of the format (doc.go): version 1 is one dense float
// input and one output, version 2 adds typed inputs, embeddings and several
// outputs.
const (
	magicV1 = "IOPSNN01"
	magicV2 = "IOPSNN02"
)

// v1 reports whether version 1 can say everything about m; such models are
// written as version 1, so my_model's files stay byte for byte what every
// inferops release wrote and read.
func (m *Model) v1() bool {
	return m.Direct() && len(m.Inputs[0].Shape) == 2 && len(m.Outputs) == 1 &&
		m.Outputs[0].Offset == 0 && m.Outputs[0].Width == m.OutputWidth()
}

// MarshalBinary encodes the model in the .iom format.
func (m *Model) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	for _, in := range m.Inputs {
		if len(in.Name) > math.MaxUint16 {
			return nil, errors.New("alias too long")
		}
	}
	for _, o := range m.Outputs {
		if len(o.Name) > math.MaxUint16 {
			return nil, errors.New("alias too long")
		}
	}
	le := binary.LittleEndian
	b := make([]byte, 0, 64+4*m.Params())
	str := func(s string) {
		b = le.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	floats := func(v []float32) {
		for _, f := range v {
			b = le.AppendUint32(b, math.Float32bits(f))
		}
	}
	if m.v1() {
		b = append(b, magicV1...)
		str(m.Inputs[0].Name)
		str(m.Outputs[0].Name)
	} else {
		b = append(b, magicV2...)
		b = le.AppendUint16(b, uint16(len(m.Inputs)))
		for _, in := range m.Inputs {
			str(in.Name)
			b = append(b, byte(in.DType), byte(len(in.Shape)))
			for _, d := range in.Shape {
				b = le.AppendUint64(b, uint64(d))
			}
			b = append(b, byte(in.Enc))
			if in.Enc == Hashed {
				b = le.AppendUint32(b, uint32(in.Buckets))
				b = le.AppendUint32(b, uint32(in.Dim))
				floats(in.Table)
			}
		}
		b = le.AppendUint16(b, uint16(len(m.Outputs)))
		for _, o := range m.Outputs {
			str(o.Name)
			b = le.AppendUint32(b, uint32(o.Offset))
			b = le.AppendUint32(b, uint32(o.Width))
		}
	}
	b = le.AppendUint32(b, uint32(len(m.Layers)))
	for _, l := range m.Layers {
		b = le.AppendUint32(b, uint32(l.In))
		b = le.AppendUint32(b, uint32(l.Out))
		b = append(b, byte(l.Act))
		floats(l.W)
		floats(l.B)
	}
	return le.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// Decode reads a .iom file's bytes, version 1 or 2. Every length is checked
// before it is used, so truncated or hostile input is an error, never a
// panic.
func Decode(data []byte) (*Model, error) {
	if len(data) < len(magicV1)+4 {
		return nil, fmt.Errorf("not an inferops model file (want magic %q or %q)", magicV1, magicV2)
	}
	magic := string(data[:len(magicV1)])
	if magic != magicV1 && magic != magicV2 {
		return nil, fmt.Errorf("not an inferops model file (want magic %q or %q)", magicV1, magicV2)
	}
	le := binary.LittleEndian
	body, sum := data[:len(data)-4], le.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch: the file is corrupt or truncated")
	}
	r := reader{b: body[len(magicV1):]}
	m := &Model{}
	params := 0
	if magic == magicV1 {
		in, out := r.str(), r.str()
		m.Inputs = []Input{{Name: in, DType: tfpb.DataType_DT_FLOAT, Enc: Dense}}
		m.Outputs = []Output{{Name: out}} // shapes follow from the layers
	} else {
		ni := int(r.u16())
		if r.err == nil && (ni == 0 || ni > maxIO) {
			return nil, fmt.Errorf("model declares %d inputs, want 1..%d", ni, maxIO)
		}
		for i := 0; i < ni && r.err == nil; i++ {
			in := Input{Name: r.str(), DType: tfpb.DataType(r.byte())}
			rank := int(r.byte())
			if r.err == nil && (rank == 0 || rank > maxRank) {
				return nil, fmt.Errorf("input %q has rank %d, want 1..%d", in.Name, rank, maxRank)
			}
			for range rank {
				in.Shape = append(in.Shape, int64(r.u64()))
			}
			in.Enc = Encoding(r.byte())
			if in.Enc == Hashed {
				in.Buckets, in.Dim = int(r.u32()), int(r.u32())
				if in.Buckets <= 0 || in.Dim <= 0 || in.Buckets > MaxParams || in.Dim > MaxParams || in.Buckets*in.Dim > MaxParams-params {
					return nil, fmt.Errorf("input %q: %d x %d embedding is beyond %d parameters", in.Name, in.Buckets, in.Dim, MaxParams)
				}
				params += in.Buckets * in.Dim
				in.Table = r.floats(in.Buckets * in.Dim)
			}
			m.Inputs = append(m.Inputs, in)
		}
		no := int(r.u16())
		if r.err == nil && (no == 0 || no > maxIO) {
			return nil, fmt.Errorf("model declares %d outputs, want 1..%d", no, maxIO)
		}
		for i := 0; i < no && r.err == nil; i++ {
			m.Outputs = append(m.Outputs, Output{Name: r.str(), Offset: int(r.u32()), Width: int(r.u32())})
		}
	}
	n := r.u32()
	if r.err == nil && (n == 0 || n > maxLayers) {
		return nil, fmt.Errorf("model declares %d layers, want 1..%d", n, maxLayers)
	}
	for i := 0; i < int(n) && r.err == nil; i++ {
		l := Layer{In: int(r.u32()), Out: int(r.u32()), Act: Activation(r.byte())}
		if l.In <= 0 || l.Out <= 0 || l.In > MaxParams || l.Out > MaxParams || l.In*l.Out > MaxParams-params {
			return nil, fmt.Errorf("layer %d is %dx%d: beyond %d parameters", i, l.In, l.Out, MaxParams)
		}
		params += l.In*l.Out + l.Out
		l.W, l.B = r.floats(l.In*l.Out), r.floats(l.Out)
		m.Layers = append(m.Layers, l)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the last layer", len(r.b))
	}
	if magic == magicV1 {
		m.Inputs[0].Shape = []int64{-1, int64(m.InputWidth())}
		m.Outputs[0].Width = m.OutputWidth()
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("file is truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str() string {
	b := r.take(2)
	if b == nil {
		return ""
	}
	return string(r.take(int(binary.LittleEndian.Uint16(b))))
}

func (r *reader) floats(n int) []float32 {
	b := r.take(4 * n)
	if b == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Load reads <dir>/model.iom.
func Load(dir string) (*Model, error) {
	p := filepath.Join(dir, FileName)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// Save writes <dir>/model.iom atomically (temp file + rename), so a server
// polling the directory never loads half a file.
func Save(dir string, m *Model) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, FileName), b)
}

// WriteFile writes path atomically (temp file in its directory + rename).
func WriteFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".model-*.tmp")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// Equal reports identical structure and weights.
func (m *Model) Equal(o *Model) bool {
	a, err1 := m.MarshalBinary()
	b, err2 := o.MarshalBinary()
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}
