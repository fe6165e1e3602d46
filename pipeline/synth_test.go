package pipeline

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// The synthesizer's valid records parse and its malformed ones are refused
// with the reason they are named for, for every kind of schema.
func TestSynthRecords(t *testing.T) {
	raw, err := NewSchema([]TensorSpec{{Name: "examples", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}}}, SchemaOptions{ValueFormat: ValueFormatRaw})
	if err != nil {
		t.Fatal(err)
	}
	ints, err := NewSchema([]TensorSpec{
		{Name: "a", DType: tfpb.DataType_DT_UINT8, Shape: []int64{-1, 1}},
		{Name: "b", DType: tfpb.DataType_DT_UINT64, Shape: []int64{-1}},
		{Name: "c", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1, -1}},
	}, SchemaOptions{IDField: "rid"})
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*Schema{"seed": seedSchema(t, 32), "typed": typedSchema(t, SchemaOptions{}), "ints": ints, "raw": raw}
	wantKinds := map[string][]string{
		"seed":  {ReasonInvalidJSON, ReasonInvalidJSON, ReasonBadID, ReasonMissingFeatures, ReasonNonNumeric, ReasonWrongWidth, ReasonNonFinite},
		"typed": {ReasonInvalidJSON, ReasonInvalidJSON, ReasonBadID, ReasonMissingInput, ReasonWrongType, ReasonWrongShape, ReasonOutOfRange, ReasonNonFinite},
		"ints":  {ReasonInvalidJSON, ReasonInvalidJSON, ReasonBadID, ReasonMissingInput, ReasonWrongType, ReasonWrongShape, ReasonOutOfRange},
		"raw":   nil,
	}
	for name, s := range schemas {
		t.Run(name, func(t *testing.T) {
			y := NewSynth(s)
			rng := rand.New(rand.NewPCG(7, 8))
			var v Values
			for i := range 200 {
				rec := y.Record(nil, rng, "r-"+string(rune('a'+i%26)))
				if rerr := s.Parse(rec, &v); rerr != nil {
					t.Fatalf("valid record refused: %v: %s", rerr, rec)
				}
				if !s.Raw() && !json.Valid(rec) {
					t.Fatalf("not JSON: %s", rec)
				}
			}
			var got []string
			for k, m := range y.Malformed() {
				got = append(got, m.Reason)
				for range 50 { // every victim the rng may pick
					rec := y.MalformedRecord(nil, rng, "bad", k)
					rerr := s.Parse(rec, &v)
					if rerr == nil || rerr.Reason != m.Reason {
						t.Fatalf("%s: got %v, want %s: %s", m.Name, rerr, m.Reason, rec)
					}
				}
			}
			if !equalStrings(got, wantKinds[name]) {
				t.Errorf("kinds %v, want %v", got, wantKinds[name])
			}
		})
	}
	// A raw record is a tf.Example: field 1 (features), a map of entries.
	rec := NewSynth(raw).Record(nil, rand.New(rand.NewPCG(1, 1)), "x-1")
	num, typ, n := protowire.ConsumeTag(rec)
	if num != 1 || typ != protowire.BytesType || n < 0 {
		t.Fatalf("not a tf.Example: %x", rec)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkSynthRecord is the demo's per-record cost on the ads model.
func BenchmarkSynthRecord(b *testing.B) {
	s, err := NewSchema([]TensorSpec{
		{Name: "user_id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}},
		{Name: "ad_ids", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1, 8}},
		{Name: "context", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 16}},
		{Name: "query", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}},
		{Name: "hour", DType: tfpb.DataType_DT_INT32, Shape: []int64{-1}},
	}, SchemaOptions{})
	if err != nil {
		b.Fatal(err)
	}
	y := NewSynth(s)
	rng := rand.New(rand.NewPCG(1, 2))
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = y.Record(dst[:0], rng, "demo-1")
	}
}
