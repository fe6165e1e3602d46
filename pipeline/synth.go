package pipeline

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Synth writes input records for a Schema: valid ones with plausible values
// for every input, and malformed ones of every kind the worker refuses for
// that schema. The demo traffic and the perf generator both use it, so what
// they send is what the worker is validated against.
//
// A synthesized value is drawn per dtype: floats around 0 with four
// decimals, ids up to 10^12 for 64-bit integers and small counts for the
// narrow ones, true/false, and short query strings. An inner size the
// signature leaves open (-1) is 3, so synthesized records batch together;
// an input of unknown rank gets a bare value. With --value-format raw a
// record is a serialized tf.Example.
type Synth struct {
	s         *Schema
	malformed []Malformed
}

// Malformed is one kind of bad record: its name and the reason the worker
// gives it.
type Malformed struct {
	Name, Reason string
	build        func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte
}

// openSize is the length a synthesized list takes where the signature
// leaves it open.
const openSize = 3

// NewSynth prepares a synthesizer for s.
func NewSynth(s *Schema) *Synth {
	y := &Synth{s: s}
	y.malformed = y.malformedKinds()
	return y
}

// Schema is the schema records are made for.
func (y *Synth) Schema() *Schema { return y.s }

// AppendInputs appends one field per input, `"field":value`, with the comma
// before each unless dst ends an opening '{' (AppendKey's rule).
func (y *Synth) AppendInputs(dst []byte, rng *rand.Rand) []byte {
	for i := range y.s.inputs {
		in := &y.s.inputs[i]
		dst = AppendKey(dst, in.field)
		dst = y.appendValue(dst, in, rng, 0)
	}
	return dst
}

// Record appends a whole valid record: {"<id field>": id, inputs...}, or a
// serialized tf.Example when the schema reads raw values (no id: results
// then get "topic-partition-offset").
func (y *Synth) Record(dst []byte, rng *rand.Rand, id string) []byte {
	if y.s.raw {
		return appendExample(dst, rng, id)
	}
	dst = append(dst, '{')
	dst = AppendKey(dst, y.s.idField)
	dst = AppendJSONString(dst, id)
	dst = y.AppendInputs(dst, rng)
	return append(dst, '}')
}

// Malformed lists the kinds of bad record this schema can be sent, in a
// fixed order; every one gets its Reason from Schema.Parse. A raw schema
// has none: any bytes are a DT_STRING.
func (y *Synth) Malformed() []Malformed { return y.malformed }

// MalformedRecord appends a record of kind k of Malformed().
func (y *Synth) MalformedRecord(dst []byte, rng *rand.Rand, id string, k int) []byte {
	return y.malformed[k].build(y, dst, rng, id)
}

func (y *Synth) appendValue(dst []byte, in *schemaInput, rng *rand.Rand, depth int) []byte {
	if in.inner != nil && depth < len(in.inner) {
		n := int(in.inner[depth])
		if n < 0 {
			n = openSize
		}
		dst = append(dst, '[')
		for j := range n {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = y.appendValue(dst, in, rng, depth+1)
		}
		return append(dst, ']')
	}
	return appendElement(dst, in, rng)
}

// queries are the strings synthesized for string inputs.
var queries = []string{"running shoes", "red dress", "wireless earbuds", "coffee maker", "yoga mat",
	"phone case", "desk lamp", "hiking boots", "smart watch", "backpack", "sunglasses", "air fryer"}

func appendElement(dst []byte, in *schemaInput, rng *rand.Rand) []byte {
	switch in.kind {
	case KindFloat32, KindFloat64:
		v := math.Round(rng.NormFloat64()*1e4) / 1e4
		if in.spec.DType == tfpb.DataType_DT_HALF {
			v = math.Max(-4, math.Min(4, v))
		}
		return strconv.AppendFloat(dst, v, 'f', -1, 64)
	case KindBool:
		return strconv.AppendBool(dst, rng.IntN(2) == 1)
	case KindString:
		return AppendJSONString(dst, queries[rng.IntN(len(queries))])
	}
	hi := uint64(1e12)
	if in.spec.DType != tfpb.DataType_DT_INT64 && in.spec.DType != tfpb.DataType_DT_UINT64 {
		hi = min(uint64(in.hi)+1, 1e6)
	}
	return strconv.AppendUint(dst, rng.Uint64N(hi), 10)
}

// malformedKinds are the bad records that fit the schema: each corrupts
// one input in the way producers really do.
func (y *Synth) malformedKinds() []Malformed {
	if y.s.raw {
		return nil
	}
	seed := y.s.seed
	reason := func(general, seedReason string) string {
		if seed {
			return seedReason
		}
		return general
	}
	ks := []Malformed{
		{Name: "truncated JSON", Reason: ReasonInvalidJSON, build: func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte {
			start := len(dst)
			dst = y.Record(dst, rng, id)
			return dst[:start+(len(dst)-start)/2]
		}},
		{Name: "not JSON", Reason: ReasonInvalidJSON, build: func(_ *Synth, dst []byte, _ *rand.Rand, id string) []byte {
			return append(append(dst, "\x00\x01\x02 binary "...), id...)
		}},
		{Name: "bad id", Reason: ReasonBadID, build: func(y *Synth, dst []byte, rng *rand.Rand, _ string) []byte {
			dst = append(dst, '{')
			dst = AppendKey(dst, y.s.idField)
			dst = append(dst, `{"a":1}`...)
			dst = y.AppendInputs(dst, rng)
			return append(dst, '}')
		}},
		{Name: "missing input", Reason: reason(ReasonMissingInput, ReasonMissingFeatures), build: func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte {
			return y.corrupt(dst, rng, id, func(*schemaInput) bool { return true }, nil)
		}},
		{Name: "wrong type", Reason: reason(ReasonWrongType, ReasonNonNumeric), build: func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte {
			return y.corrupt(dst, rng, id, func(*schemaInput) bool { return true }, func(dst []byte, in *schemaInput, _ *rand.Rand) []byte {
				return y.withLeaf(dst, in, func(dst []byte) []byte {
					if in.kind == KindString {
						return append(dst, '7')
					}
					return append(dst, `"high"`...)
				})
			})
		}},
	}
	fixedList := func(in *schemaInput) bool { return len(in.inner) > 0 && in.inner[0] > 0 }
	scalar := func(in *schemaInput) bool { return in.inner != nil && len(in.inner) == 0 }
	if y.any(func(in *schemaInput) bool { return fixedList(in) || scalar(in) }) {
		ks = append(ks, Malformed{Name: "wrong shape", Reason: reason(ReasonWrongShape, ReasonWrongWidth), build: func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte {
			return y.corrupt(dst, rng, id, func(in *schemaInput) bool { return fixedList(in) || scalar(in) }, func(dst []byte, in *schemaInput, rng *rand.Rand) []byte {
				if scalar(in) {
					dst = append(dst, '[')
					dst = appendElement(dst, in, rng)
					return append(dst, ']')
				}
				// One value short in the first dimension (the seed's
				// width is halved, as the demo always did).
				n := in.inner[0] - 1
				if seed {
					n = in.inner[0] / 2
				}
				if n < 1 {
					n = in.inner[0] + 1
				}
				short := *in
				short.inner = append([]int64{n}, in.inner[1:]...)
				return y.appendValue(dst, &short, rng, 0)
			})
		}})
	}
	isFloat := func(in *schemaInput) bool { return in.kind == KindFloat32 || in.kind == KindFloat64 }
	outOfRange := func(in *schemaInput) bool { return in.kind == KindInt64 || (isFloat(in) && !seed) }
	if y.any(outOfRange) {
		ks = append(ks, Malformed{Name: "out of range", Reason: ReasonOutOfRange, build: func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte {
			return y.corrupt(dst, rng, id, outOfRange, func(dst []byte, in *schemaInput, _ *rand.Rand) []byte {
				return y.withLeaf(dst, in, func(dst []byte) []byte {
					switch {
					case isFloat(in):
						return append(dst, "1e309"...)
					case in.spec.DType == tfpb.DataType_DT_UINT64:
						return append(dst, "18446744073709551616"...)
					}
					return strconv.AppendUint(dst, uint64(in.hi)+1, 10)
				})
			})
		}})
	}
	if y.any(isFloat) {
		ks = append(ks, Malformed{Name: "NaN", Reason: ReasonNonFinite, build: func(y *Synth, dst []byte, rng *rand.Rand, id string) []byte {
			return y.corrupt(dst, rng, id, isFloat, func(dst []byte, in *schemaInput, _ *rand.Rand) []byte {
				return y.withLeaf(dst, in, func(dst []byte) []byte { return append(dst, "NaN"...) })
			})
		}})
	}
	return ks
}

func (y *Synth) any(f func(*schemaInput) bool) bool {
	for i := range y.s.inputs {
		if f(&y.s.inputs[i]) {
			return true
		}
	}
	return false
}

// corrupt writes a record whose one input, picked among those eligible,
// has its value from bad; a nil bad leaves the input's field out.
func (y *Synth) corrupt(dst []byte, rng *rand.Rand, id string, eligible func(*schemaInput) bool, bad func([]byte, *schemaInput, *rand.Rand) []byte) []byte {
	var pick []int
	for i := range y.s.inputs {
		if eligible(&y.s.inputs[i]) {
			pick = append(pick, i)
		}
	}
	victim := pick[rng.IntN(len(pick))]
	dst = append(dst, '{')
	dst = AppendKey(dst, y.s.idField)
	dst = AppendJSONString(dst, id)
	for i := range y.s.inputs {
		in := &y.s.inputs[i]
		if i == victim && bad == nil {
			continue
		}
		dst = AppendKey(dst, in.field)
		if i == victim {
			dst = bad(dst, in, rng)
		} else {
			dst = y.appendValue(dst, in, rng, 0)
		}
	}
	return append(dst, '}')
}

// withLeaf writes a valid value of in whose first element is leaf's.
func (y *Synth) withLeaf(dst []byte, in *schemaInput, leaf func([]byte) []byte) []byte {
	rank := len(in.inner)
	for d := 0; d < rank; d++ {
		dst = append(dst, '[')
	}
	dst = leaf(dst)
	if rank == 0 {
		return dst
	}
	// The rest of the innermost list, then the remaining lists, valid.
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]int, rank)
	for d, n := range in.inner {
		sizes[d] = int(n)
		if n < 0 {
			sizes[d] = openSize
		}
	}
	for d := rank - 1; d >= 0; d-- {
		for j := 1; j < sizes[d]; j++ {
			dst = append(dst, ',')
			dst = y.appendValue(dst, in, rng, d+1)
		}
		dst = append(dst, ']')
	}
	return dst
}

// appendExample writes a serialized tf.Example (tensorflow/core/example:
// Example.features = 1, Features.feature = 1 map<string, Feature>,
// Feature.bytes_list = 1 / float_list = 2 / int64_list = 3, each list's
// value = 1) with an id, a query and four floats: what a TFX producer sends.
func appendExample(dst []byte, rng *rand.Rand, id string) []byte {
	feature := func(name string, kind protowire.Number, list []byte) []byte {
		var f []byte
		f = protowire.AppendTag(f, kind, protowire.BytesType)
		f = protowire.AppendBytes(f, list)
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, name)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		return protowire.AppendBytes(e, f)
	}
	var ids, query, floats []byte
	ids = protowire.AppendTag(ids, 1, protowire.BytesType)
	ids = protowire.AppendBytes(ids, protowire.AppendVarint(nil, rng.Uint64N(1e12)))
	query = protowire.AppendTag(query, 1, protowire.BytesType)
	query = protowire.AppendString(query, queries[rng.IntN(len(queries))])
	var packed []byte
	for range 4 {
		packed = protowire.AppendFixed32(packed, math.Float32bits(float32(rng.NormFloat64())))
	}
	floats = protowire.AppendTag(floats, 1, protowire.BytesType)
	floats = protowire.AppendBytes(floats, packed)
	var reqID []byte
	reqID = protowire.AppendTag(reqID, 1, protowire.BytesType)
	reqID = protowire.AppendString(reqID, id)
	var features []byte
	for _, f := range [][]byte{
		feature("request_id", 1, reqID), feature("user_id", 3, ids),
		feature("query", 1, query), feature("context", 2, floats),
	} {
		features = protowire.AppendTag(features, 1, protowire.BytesType)
		features = protowire.AppendBytes(features, f)
	}
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, features)
}
