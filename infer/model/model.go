package model

import (
	"fmt"
	"math"
	"sync"
)

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

// Model is a feed-forward network behind named, typed inputs: each input
// turns into features (its values as they are, or the mean of hashed
// embedding rows), the features of all inputs are concatenated in input
// order into one row of InputWidth, the layers run, and each output is a
// range of columns of the last layer.
type Model struct {
	Inputs  []Input
	Outputs []Output
	Layers  []Layer

	maxWidth int
	scratch  sync.Pool // *[]float32, two ping-pong activation buffers
}

// InputWidth is D, the features per row the first layer takes.
func (m *Model) InputWidth() int { return m.Layers[0].In }

// OutputWidth is the values per output row.
func (m *Model) OutputWidth() int { return m.Layers[len(m.Layers)-1].Out }

// Params is the number of weights, biases and embedding values.
func (m *Model) Params() int {
	n := 0
	for _, l := range m.Layers {
		n += l.In*l.Out + l.Out
	}
	for _, in := range m.Inputs {
		n += len(in.Table)
	}
	return n
}

// validate checks the shapes hang together and prepares scratch sizing.
func (m *Model) validate() error {
	if len(m.Layers) == 0 || len(m.Layers) > maxLayers {
		return fmt.Errorf("model has %d layers, want 1..%d", len(m.Layers), maxLayers)
	}
	params := 0
	for _, in := range m.Inputs {
		params += len(in.Table)
	}
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
	return m.validateIO()
}

// New checks a model built in code.
func New(inputs []Input, outputs []Output, layers []Layer) (*Model, error) {
	m := &Model{Inputs: inputs, Outputs: outputs, Layers: layers}
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
