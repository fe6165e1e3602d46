package model

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
)

// goldenInput is a fixed batch: a ramp, a zero row, and alternating signs.
func goldenInput() []float32 {
	x := make([]float32, 4*Width)
	for i := range Width {
		x[i] = float32(i)/float32(Width) - 0.5
		x[2*Width+i] = float32(1 - 2*(i%2))
		x[3*Width+i] = float32((i*7)%13)/6 - 1
	}
	return x
}

// reference is a naive float64 forward pass, independent of Predict's loop
// order, scratch buffers and zero skipping.
func reference(m *Model, x []float32, rows int) []float64 {
	var out []float64
	for r := range rows {
		cur := make([]float64, m.InputWidth())
		for i := range cur {
			cur[i] = float64(x[r*m.InputWidth()+i])
		}
		for _, l := range m.Layers {
			next := make([]float64, l.Out)
			for j := range next {
				s := float64(l.B[j])
				for i := range l.In {
					s += cur[i] * float64(l.W[i*l.Out+j])
				}
				switch l.Act {
				case ReLU:
					s = math.Max(s, 0)
				case Sigmoid:
					s = 1 / (1 + math.Exp(-s))
				}
				next[j] = s
			}
			cur = next
		}
		out = append(out, cur...)
	}
	return out
}

func TestCTRGolden(t *testing.T) {
	// Captured from this implementation when version 1 and 2 were shipped:
	// they change only if the shipped weights change, which would silently
	// change every user's scores.
	golden := map[int64]struct {
		crc    uint32
		scores []float64
	}{
		1: {0xaa9a7a87, []float64{0.11295025, 0.23739408, 0.20578966, 0.10962332}},
		2: {0x25c91f51, []float64{0.0942166, 0.23741673, 0.089072324, 0.13028196}},
	}
	x := goldenInput()
	for _, v := range Versions {
		m := CTR(v)
		if m.InputWidth() != Width || m.OutputWidth() != 1 || m.Inputs[0].Name != InputName || m.Outputs[0].Name != OutputName || !m.v1() {
			t.Fatalf("v%d shape %d->%d %+v->%+v", v, m.InputWidth(), m.OutputWidth(), m.Inputs, m.Outputs)
		}
		got := make([]float32, 4)
		if err := m.Predict(got, x, 4); err != nil {
			t.Fatal(err)
		}
		ref := reference(m, x, 4)
		b, _ := m.MarshalBinary()
		crc := binary.LittleEndian.Uint32(b[len(b)-4:]) // the file's own CRC-32
		t.Logf("v%d crc %#x scores %v", v, crc, got)
		g := golden[v]
		if crc != g.crc {
			t.Errorf("v%d file crc %#x, want %#x", v, crc, g.crc)
		}
		for i := range got {
			if math.Abs(float64(got[i])-ref[i]) > 1e-5 {
				t.Errorf("v%d row %d: Predict %v, reference %v", v, i, got[i], ref[i])
			}
			if math.Abs(float64(got[i])-g.scores[i]) > 1e-5 {
				t.Errorf("v%d row %d: %v, golden %v", v, i, got[i], g.scores[i])
			}
			if got[i] <= 0 || got[i] >= 1 {
				t.Errorf("v%d row %d: score %v outside (0,1)", v, i, got[i])
			}
		}
	}
	if CTR(1).Equal(CTR(2)) {
		t.Fatal("versions 1 and 2 have the same weights")
	}
	if !CTR(2).Equal(CTR(2)) {
		t.Fatal("CTR is not deterministic")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := CTR(2)
	if err := Save(dir, m); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(m) {
		t.Fatal("loaded model differs")
	}
	x := goldenInput()
	a, b := make([]float32, 4), make([]float32, 4)
	_ = m.Predict(a, x, 4)
	_ = back.Predict(b, x, 4)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d: %v vs %v", i, a[i], b[i])
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("Save left temp files: %v", entries)
	}
}

// seal appends a valid checksum, so a test reaches the checks after it.
func seal(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.ChecksumIEEE(body))
}

func TestDecodeRejects(t *testing.T) {
	good, err := CTR(1).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	body := good[:len(good)-4]
	// Header offsets: magic 8, "features" 2+8, "score" 2+5, layer count at 25.
	const layersAt = 8 + 2 + 8 + 2 + 5
	flipped := append([]byte(nil), good...)
	flipped[100] ^= 1
	setU32 := func(at int, v uint32) []byte {
		b := append([]byte(nil), body...)
		binary.LittleEndian.PutUint32(b[at:], v)
		return seal(b)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "not an inferops model"},
		{"version 3", append([]byte("IOPSNN03"), good[8:]...), "not an inferops model"},
		{"wrong magic", append([]byte("SAVEDMDL"), good[8:]...), "not an inferops model"},
		{"bit flip", flipped, "checksum"},
		{"truncated", good[:len(good)/2], "checksum"},
		{"truncated but sealed", seal(body[:len(body)/2]), "truncated"},
		{"trailing bytes", seal(append(append([]byte(nil), body...), 0, 0, 0, 0)), "unexpected bytes"},
		{"zero layers", setU32(layersAt, 0), "0 layers"},
		{"too many layers", setU32(layersAt, 1<<30), "layers"},
		{"huge layer", setU32(layersAt+4, 1<<30), "parameters"},
		{"mismatched layers", setU32(layersAt+4+4, 63), "layer 1"},
		{"bad activation", func() []byte { b := append([]byte(nil), body...); b[layersAt+12] = 9; return seal(b) }(), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode = %v, %v; want error with %q", m, err, tt.wantErr)
			}
		})
	}
}

func TestAdsModel(t *testing.T) {
	m := Ads(1)
	if m.v1() || len(m.Inputs) != 5 || len(m.Outputs) != 2 || m.InputWidth() != 68 {
		t.Fatalf("ads_ctr: %d inputs, %d outputs, width %d", len(m.Inputs), len(m.Outputs), m.InputWidth())
	}
	if Ads(1).Equal(Ads(2)) || !Ads(2).Equal(Ads(2)) {
		t.Fatal("ads versions must differ from each other and be deterministic")
	}
	b, err := m.MarshalBinary()
	if err != nil || string(b[:8]) != magicV2 {
		t.Fatalf("marshal: %v %q", err, b[:8])
	}
	back, err := Decode(b)
	if err != nil || !back.Equal(m) {
		t.Fatalf("decode: %v", err)
	}
	// Two rows: featurize from typed tensors, then predict.
	in := map[string]*tensor.Tensor{
		"user_id": {DType: tfpb.DataType_DT_INT64, Shape: []int64{2}, Int64: []int64{42, 43}},
		"ad_ids":  {DType: tfpb.DataType_DT_INT64, Shape: []int64{2, 8}, Int64: make([]int64, 16)},
		"context": {DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, 16}, Float32: make([]float32, 32)},
		"query":   {DType: tfpb.DataType_DT_STRING, Shape: []int64{2}, Strings: [][]byte{[]byte("running shoes"), []byte("red dress")}},
		"hour":    {DType: tfpb.DataType_DT_INT64, Shape: []int64{2}, Int64: []int64{9, 21}},
	}
	for i := range 16 {
		in["ad_ids"].Int64[i] = int64(1000 + i)
		in["context"].Float32[i*2] = float32(i) / 16
	}
	x := make([]float32, 2*m.InputWidth())
	if err := m.Featurize(x, in, 2); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 2*m.OutputWidth())
	if err := m.Predict(out, x, 2); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v <= 0 || v >= 1 {
			t.Errorf("output %d = %v outside (0,1)", i, v)
		}
	}
	if out[0] == out[2] {
		t.Errorf("two different rows scored the same: %v", out)
	}
	if out[1] >= out[0] && out[3] >= out[2] {
		t.Errorf("cvr %v should mostly be below ctr %v", []float32{out[1], out[3]}, []float32{out[0], out[2]})
	}
	// The same values featurize the same way (hashing is deterministic).
	y := make([]float32, 2*m.InputWidth())
	_ = m.Featurize(y, in, 2)
	if !slices.Equal(x, y) {
		t.Error("featurize is not deterministic")
	}
}

func TestNewRejectsBadIO(t *testing.T) {
	l := Layer{In: 4, Out: 1, W: make([]float32, 4), B: make([]float32, 1)}
	out := []Output{{Name: "y", Width: 1}}
	for _, tt := range []struct {
		name    string
		inputs  []Input
		outputs []Output
		want    string
	}{
		{"width mismatch", []Input{DenseInput("x", 3)}, out, "give 3 features"},
		{"no outputs", []Input{DenseInput("x", 4)}, nil, "0 outputs"},
		{"output past the layer", []Input{DenseInput("x", 4)}, []Output{{Name: "y", Offset: 1, Width: 1}}, "columns 1..2"},
		{"dense string", []Input{{Name: "s", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1, 4}, Enc: Dense}}, out, "dense input is a number"},
		{"unknown dense size", []Input{{Name: "x", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, -1}, Enc: Dense}}, out, "every inner size known"},
		{"hashed float", []Input{{Name: "f", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1}, Enc: Hashed, Buckets: 1, Dim: 4, Table: make([]float32, 4)}}, out, "integer or a string"},
		{"short table", []Input{{Name: "id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}, Enc: Hashed, Buckets: 2, Dim: 4, Table: make([]float32, 4)}}, out, "4 table values"},
		{"repeated names", []Input{DenseInput("x", 2), DenseInput("x", 2)}, out, "repeated"},
	} {
		if _, err := New(tt.inputs, tt.outputs, []Layer{l}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ...%s...", tt.name, err, tt.want)
		}
	}
}

func TestPredictChecksSizes(t *testing.T) {
	m := CTR(1)
	if err := m.Predict(make([]float32, 2), make([]float32, Width), 2); err == nil {
		t.Fatal("short input accepted")
	}
	if err := m.Predict(nil, nil, 0); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

func TestPredictAllocs(t *testing.T) {
	m := CTR(1)
	x := make([]float32, 64*Width)
	dst := make([]float32, 64)
	_ = m.Predict(dst, x, 64)
	if n := testing.AllocsPerRun(100, func() { _ = m.Predict(dst, x, 64) }); n > 0 {
		t.Fatalf("Predict allocates %.1f times per batch", n)
	}
}

func TestMaterialize(t *testing.T) {
	base := filepath.Join(t.TempDir(), "models", Name)
	wrote, err := Materialize(Name, base)
	if err != nil || !wrote {
		t.Fatalf("Materialize = %v, %v", wrote, err)
	}
	for _, v := range Versions {
		m, err := Load(filepath.Join(base, strconv.FormatInt(v, 10)))
		if err != nil || !m.Equal(CTR(v)) {
			t.Fatalf("v%d: %v", v, err)
		}
	}
	// An operator removed version 1: a restart must not bring it back.
	if err := os.RemoveAll(filepath.Join(base, "1")); err != nil {
		t.Fatal(err)
	}
	if wrote, err := Materialize(Name, base); err != nil || wrote {
		t.Fatalf("second Materialize = %v, %v", wrote, err)
	}
	if _, err := os.Stat(filepath.Join(base, "1")); !os.IsNotExist(err) {
		t.Fatal("version 1 came back")
	}
}

func BenchmarkPredict(b *testing.B) {
	for _, rows := range []int{1, 8, 64, 512} {
		b.Run("batch="+strconv.Itoa(rows), func(b *testing.B) {
			m := CTR(1)
			x := make([]float32, rows*Width)
			for i := range x {
				x[i] = float32(i%17)/8 - 1
			}
			dst := make([]float32, rows)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_ = m.Predict(dst, x, rows)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
