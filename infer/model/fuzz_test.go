package model

import (
	"testing"

	"github.com/inferops/inferops/infer/tfpb"
)

// FuzzDecode: model files come from disk, where anything can be. No bytes
// may make Decode panic or hand back a model that does not validate. The
// fuzzed bytes are a file body: sealed with a valid checksum, so mutations
// reach the parser instead of the checksum check.
func FuzzDecode(f *testing.F) {
	// Small models of each version: the shipped ones are hundreds of KB,
	// which the fuzzer would spend its time copying.
	l := Layer{In: 3, Out: 2, Act: Sigmoid, W: make([]float32, 6), B: []float32{1, 2}}
	v1, _ := New([]Input{DenseInput("x", 3)}, []Output{{Name: "y", Width: 2}}, []Layer{l})
	v2, _ := New([]Input{
		DenseInput("x", 1),
		{Name: "id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1, -1}, Enc: Hashed, Buckets: 2, Dim: 2, Table: []float32{1, 2, 3, 4}},
	}, []Output{{Name: "a", Width: 1}, {Name: "b", Offset: 1, Width: 1}}, []Layer{l})
	for _, m := range []*Model{v1, v2} {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:len(b)-4])
		f.Add(b[:len(b)/3])
	}
	f.Add([]byte("IOPSNN02\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(seal(b))
		if err != nil {
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("decoded an invalid model: %v", err)
		}
		if _, err := m.MarshalBinary(); err != nil {
			t.Fatalf("a decoded model does not encode: %v", err)
		}
	})
}
