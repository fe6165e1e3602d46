package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
)

// my_model's name, aliases and input width.
const (
	Name       = pipeline.DefaultModel
	InputName  = "features"
	OutputName = "score"
	Width      = 32
)

// AdsName is the second shipped model, an ads click- and conversion-rate
// model with the inputs ad platforms serve (Ads).
const AdsName = "ads_ctr"

// Versions are the shipped versions of every shipped model.
var Versions = []int64{1, 2}

// Labels are the version labels the embedded server gives the shipped
// models: a stable version and a canary, so a version switch (by number or
// label) can be tried on a machine with nothing else installed.
var Labels = map[string]int64{"stable": 1, "canary": 2}

// Shipment is a model inferops ships: its name and how to build version v.
type Shipment struct {
	Name  string
	Build func(v int64) *Model
}

// Shipped lists the shipped models; the embedded server serves them all.
var Shipped = []Shipment{{Name, CTR}, {AdsName, Ads}}

// ShippedNames are the shipped models' names.
func ShippedNames() []string {
	names := make([]string, len(Shipped))
	for i, s := range Shipped {
		names[i] = s.Name
	}
	return names
}

// layer makes a dense layer from rng: He-initialised weights, biases
// around bias.
func (r *rng) layer(in, out int, act Activation, gain, bias float64) Layer {
	l := Layer{In: in, Out: out, Act: act, W: make([]float32, in*out), B: make([]float32, out)}
	scale := gain * math.Sqrt(2/float64(in)) // He initialisation
	for i := range l.W {
		l.W[i] = float32(r.norm() * scale)
	}
	for i := range l.B {
		l.B[i] = float32(bias + 0.05*r.norm())
	}
	return l
}

// CTR builds version v of my_model: 32 -> 64 ReLU -> 32 ReLU -> 1 sigmoid.
// Deterministic: the same v gives bit-identical weights everywhere.
func CTR(v int64) *Model {
	rng := splitmix(uint64(v)*0x9e3779b97f4a7c15 + 0x1d8e4e27c47d124f)
	// The last layer is scaled down and biased negative so scores spread
	// over (0, 1) around a few-percent-to-tens-of-percent click rate instead
	// of saturating at 0 or 1 on N(0,1) features.
	l1 := rng.layer(Width, 64, ReLU, 1, 0)
	l2 := rng.layer(64, 32, ReLU, 1, 0)
	l3 := rng.layer(32, 1, Sigmoid, 1, -1.0)
	return mustNew("CTR", []Input{DenseInput(InputName, Width)}, []Output{{Name: OutputName, Width: 1}}, []Layer{l1, l2, l3})
}

// The ads model's signature (Ads).
const (
	adsEmbed   = 16   // embedding width of the id and query inputs
	adsBuckets = 1024 // hash buckets per embedding table
	adsContext = 16   // dense context features
	adsAdIDs   = 8    // the candidate ad and the ids it belongs to
)

// Ads builds version v of ads_ctr, a model with the inputs ad platforms
// serve and two heads:
//
//	user_id  DT_INT64  [-1]     hashed into 1024 x 16
//	ad_ids   DT_INT64  [-1, 8]  hashed, mean of 8 rows of 1024 x 16
//	context  DT_FLOAT  [-1, 16] dense
//	query    DT_STRING [-1]     hashed into 1024 x 16
//	hour     DT_INT32  [-1]     hashed into 24 x 4
//	-> 68 -> 64 ReLU -> 32 ReLU -> 2 sigmoid: ctr [-1, 1], cvr [-1, 1]
//
// Deterministic like CTR; a version's weights differ from the other's.
func Ads(v int64) *Model {
	rng := splitmix(uint64(v)*0xbf58476d1ce4e5b9 + 0x94d049bb133111eb)
	table := func(buckets, dim int) []float32 {
		t := make([]float32, buckets*dim)
		for i := range t {
			t[i] = float32(0.5 * rng.norm())
		}
		return t
	}
	hashed := func(name string, dt tfpb.DataType, shape []int64, buckets, dim int) Input {
		return Input{Name: name, DType: dt, Shape: shape, Enc: Hashed, Buckets: buckets, Dim: dim, Table: table(buckets, dim)}
	}
	inputs := []Input{
		hashed("ad_ids", tfpb.DataType_DT_INT64, []int64{-1, adsAdIDs}, adsBuckets, adsEmbed),
		{Name: "context", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, adsContext}, Enc: Dense},
		hashed("hour", tfpb.DataType_DT_INT32, []int64{-1}, 24, 4),
		hashed("query", tfpb.DataType_DT_STRING, []int64{-1}, adsBuckets, adsEmbed),
		hashed("user_id", tfpb.DataType_DT_INT64, []int64{-1}, adsBuckets, adsEmbed),
	}
	width := 3*adsEmbed + adsContext + 4
	l1 := rng.layer(width, 64, ReLU, 1, 0)
	l2 := rng.layer(64, 32, ReLU, 1, 0)
	l3 := rng.layer(32, 2, Sigmoid, 0.5, -1.5)
	l3.B[1] -= 2 // conversions are rarer than clicks
	return mustNew("ads", inputs, []Output{{Name: "ctr", Offset: 0, Width: 1}, {Name: "cvr", Offset: 1, Width: 1}}, []Layer{l1, l2, l3})
}

func mustNew(what string, inputs []Input, outputs []Output, layers []Layer) *Model {
	m, err := New(inputs, outputs, layers)
	if err != nil {
		panic(fmt.Sprintf("model: shipped %s network is invalid: %v", what, err)) // a programming error, caught by tests
	}
	return m
}

// Materialize writes the versions of the shipped model name under base
// (<base>/1/model.iom, <base>/2/model.iom), leaving existing version
// directories alone so an operator's edits or removals are not undone.
// It reports whether it wrote anything.
func Materialize(name, base string) (bool, error) {
	var s *Shipment
	for i := range Shipped {
		if Shipped[i].Name == name {
			s = &Shipped[i]
		}
	}
	if s == nil {
		return false, fmt.Errorf("%q is not a shipped model (inferops ships %s)", name, strings.Join(ShippedNames(), ", "))
	}
	if _, err := os.Stat(base); err == nil {
		return false, nil
	}
	for _, v := range Versions {
		dir := filepath.Join(base, strconv.FormatInt(v, 10))
		if err := Save(dir, s.Build(v)); err != nil {
			return false, fmt.Errorf("write shipped %s version %d to %s: %w", s.Name, v, dir, err)
		}
	}
	return true, nil
}

// rng is SplitMix64: tiny, fast, and fully specified, so the weights do not
// depend on math/rand's implementation across Go releases.
type rng struct{ s uint64 }

func splitmix(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform in (0, 1].
func (r *rng) uniform() float64 { return (float64(r.next()>>11) + 1) / (1 << 53) }

// norm is an approximately standard normal value: the Irwin-Hall sum of 12
// uniforms minus 6. Only exact additions are involved (no Log/Cos, whose last
// bits may differ between architectures), so weights are bit-identical on
// every machine.
func (r *rng) norm() float64 {
	s := -6.0
	for range 12 {
		s += r.uniform()
	}
	return s
}
