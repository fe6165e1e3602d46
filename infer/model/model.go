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
	"sync"
)

// FileName is the model file inside a version directory.
const FileName = "model.iom"

const magic = "IOPSNN01"

// MaxParams bounds the weights a file may declare (64 Mi floats, 256 MiB).
const MaxParams = 64 << 20

// maxLayers bounds the layer count.
const maxLayers = 64

// Activation is a layer's non-linearity.
type Activation uint8

const (
	Linear Activation = iota
	ReLU
	Sigmoid
)

func (a Activation) String() string {
	switch a {
	case Linear:
		return "linear"
	case ReLU:
		return "relu"
	case Sigmoid:
		return "sigmoid"
	}
	return fmt.Sprintf("activation(%d)", uint8(a))
}

// Layer is one dense layer.
type Layer struct {
	In, Out int
	Act     Activation
	W       []float32 // In*Out, row-major [in][out]
	B       []float32 // Out
}

// Model is a feed-forward network with one input and one output.
type Model struct {
	Input, Output string
	Layers        []Layer

	maxWidth int
	scratch  sync.Pool // *[]float32, two ping-pong activation buffers
}

// InputWidth is D, the features per row.
func (m *Model) InputWidth() int { return m.Layers[0].In }

// OutputWidth is the values per output row.
func (m *Model) OutputWidth() int { return m.Layers[len(m.Layers)-1].Out }

// Params is the number of weights and biases.
func (m *Model) Params() int {
	n := 0
	for _, l := range m.Layers {
		n += l.In*l.Out + l.Out
	}
	return n
}

// validate checks the shapes hang together and prepares scratch sizing.
func (m *Model) validate() error {
	if m.Input == "" || m.Output == "" {
		return errors.New("model needs input and output aliases")
	}
	if len(m.Layers) == 0 || len(m.Layers) > maxLayers {
		return fmt.Errorf("model has %d layers, want 1..%d", len(m.Layers), maxLayers)
	}
	params := 0
	m.maxWidth = 0
	for i, l := range m.Layers {
		if l.In <= 0 || l.Out <= 0 {
			return fmt.Errorf("layer %d is %dx%d", i, l.In, l.Out)
		}
		if i > 0 && l.In != m.Layers[i-1].Out {
			return fmt.Errorf("layer %d takes %d inputs, layer %d gives %d", i, l.In, i-1, m.Layers[i-1].Out)
		}
		if l.Act > Sigmoid {
			return fmt.Errorf("layer %d: unknown %v", i, l.Act)
		}
		if len(l.W) != l.In*l.Out || len(l.B) != l.Out {
			return fmt.Errorf("layer %d: %d weights and %d biases for %dx%d", i, len(l.W), len(l.B), l.In, l.Out)
		}
		params += l.In*l.Out + l.Out
		if params > MaxParams {
			return fmt.Errorf("model has more than %d parameters", MaxParams)
		}
		m.maxWidth = max(m.maxWidth, l.Out)
	}
	return nil
}

// New checks a model built in code.
func New(input, output string, layers []Layer) (*Model, error) {
	m := &Model{Input: input, Output: output, Layers: layers}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Predict computes rows of output into dst (len rows*OutputWidth) from x
// (len rows*InputWidth, row-major). It allocates nothing in steady state:
// activations live in pooled scratch buffers, so it is safe and cheap to
// call from many goroutines.
func (m *Model) Predict(dst, x []float32, rows int) error {
	in, out := m.InputWidth(), m.OutputWidth()
	if rows < 0 || len(x) != rows*in || len(dst) != rows*out {
		return fmt.Errorf("predict: %d rows need %d inputs and %d outputs, got %d and %d", rows, rows*in, rows*out, len(x), len(dst))
	}
	if rows == 0 {
		return nil
	}
	// Rows go through every layer in blocks, so a block's activations
	// stay in L1 next to the weights instead of a whole batch's streaming
	// through it layer by layer.
	block := min(rows, blockRows)
	need := 2 * block * m.maxWidth
	bp, _ := m.scratch.Get().(*[]float32)
	if bp == nil || cap(*bp) < need {
		b := make([]float32, need)
		bp = &b
	}
	buf := (*bp)[:need]
	for r0 := 0; r0 < rows; r0 += block {
		n := min(block, rows-r0)
		a, b := buf[:n*m.maxWidth], buf[block*m.maxWidth:block*m.maxWidth+n*m.maxWidth]
		cur := x[r0*in : (r0+n)*in]
		for li := range m.Layers {
			l := &m.Layers[li]
			var next []float32
			if li == len(m.Layers)-1 {
				next = dst[r0*out : (r0+n)*out]
			} else {
				next = a[:n*l.Out]
				a, b = b, a
			}
			dense(l, cur, next, n)
			cur = next
		}
	}
	m.scratch.Put(bp)
	return nil
}

// blockRows is the rows that go through the network together: a multiple of
// dense's four-row groups, small enough that activations stay in L1.
const blockRows = 16

// dense is y = act(xW + b) for a batch. Rows go four at a time so each
// weight row is loaded once per four rows (the loop is bound by loads, not
// multiplies); zero inputs, which ReLU layers produce in abundance, are
// skipped when a whole group of rows has them.
func dense(l *Layer, x, y []float32, rows int) {
	in, out := l.In, l.Out
	r := 0
	for ; r+4 <= rows; r += 4 {
		y0 := y[(r+0)*out : (r+1)*out : (r+1)*out]
		y1 := y[(r+1)*out : (r+2)*out : (r+2)*out]
		y2 := y[(r+2)*out : (r+3)*out : (r+3)*out]
		y3 := y[(r+3)*out : (r+4)*out : (r+4)*out]
		copy(y0, l.B)
		copy(y1, l.B)
		copy(y2, l.B)
		copy(y3, l.B)
		x0 := x[(r+0)*in : (r+1)*in : (r+1)*in]
		x1 := x[(r+1)*in : (r+2)*in : (r+2)*in]
		x2 := x[(r+2)*in : (r+3)*in : (r+3)*in]
		x3 := x[(r+3)*in : (r+4)*in : (r+4)*in]
		for i := range x0 {
			a, b, c, d := x0[i], x1[i], x2[i], x3[i]
			if a == 0 && b == 0 && c == 0 && d == 0 {
				continue
			}
			w := l.W[i*out : (i+1)*out : (i+1)*out]
			w = w[:len(y0)]
			y1, y2, y3 := y1[:len(w)], y2[:len(w)], y3[:len(w)]
			for j, wj := range w {
				y0[j] += a * wj
				y1[j] += b * wj
				y2[j] += c * wj
				y3[j] += d * wj
			}
		}
		for _, yr := range [4][]float32{y0, y1, y2, y3} {
			activate(l.Act, yr)
		}
	}
	for ; r < rows; r++ {
		yr := y[r*out : (r+1)*out : (r+1)*out]
		copy(yr, l.B)
		xr := x[r*in : (r+1)*in : (r+1)*in]
		for i, v := range xr {
			if v == 0 {
				continue
			}
			w := l.W[i*out : (i+1)*out : (i+1)*out]
			w = w[:len(yr)]
			for j, wj := range w {
				yr[j] += v * wj
			}
		}
		activate(l.Act, yr)
	}
}

func activate(act Activation, y []float32) {
	switch act {
	case ReLU:
		for j, v := range y {
			if v < 0 {
				y[j] = 0
			}
		}
	case Sigmoid:
		for j, v := range y {
			y[j] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	}
}

// MarshalBinary encodes the model in the .iom format.
func (m *Model) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if len(m.Input) > math.MaxUint16 || len(m.Output) > math.MaxUint16 {
		return nil, errors.New("alias too long")
	}
	le := binary.LittleEndian
	b := make([]byte, 0, 64+4*m.Params())
	b = append(b, magic...)
	b = le.AppendUint16(b, uint16(len(m.Input)))
	b = append(b, m.Input...)
	b = le.AppendUint16(b, uint16(len(m.Output)))
	b = append(b, m.Output...)
	b = le.AppendUint32(b, uint32(len(m.Layers)))
	for _, l := range m.Layers {
		b = le.AppendUint32(b, uint32(l.In))
		b = le.AppendUint32(b, uint32(l.Out))
		b = append(b, byte(l.Act))
		for _, v := range l.W {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
		for _, v := range l.B {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	}
	return le.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// Decode reads a .iom file's bytes. Every length is checked before it is
// used, so truncated or hostile input is an error, never a panic.
func Decode(data []byte) (*Model, error) {
	if len(data) < len(magic)+4 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("not an inferops model file (want magic %q)", magic)
	}
	le := binary.LittleEndian
	body, sum := data[:len(data)-4], le.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch: the file is corrupt or truncated")
	}
	r := reader{b: body[len(magic):]}
	m := &Model{Input: r.str(), Output: r.str()}
	n := r.u32()
	if r.err == nil && (n == 0 || n > maxLayers) {
		return nil, fmt.Errorf("model declares %d layers, want 1..%d", n, maxLayers)
	}
	params := 0
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

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
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
	if err := os.Rename(f.Name(), filepath.Join(dir, FileName)); err != nil {
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
