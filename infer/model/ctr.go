package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/inferops/inferops/pipeline"
)

// The shipped model's name, aliases and input width.
const (
	Name   = pipeline.DefaultModel
	Input  = "features"
	Output = "score"
	Width  = 32
)

// Versions are the shipped versions of my_model.
var Versions = []int64{1, 2}

// Labels are the version labels the embedded server gives the shipped model:
// a stable version and a canary, so a version switch (by number or label)
// can be tried on a machine with nothing else installed.
var Labels = map[string]int64{"stable": 1, "canary": 2}

// CTR builds version v of my_model: 32 -> 64 ReLU -> 32 ReLU -> 1 sigmoid.
// Deterministic: the same v gives bit-identical weights everywhere.
func CTR(v int64) *Model {
	rng := splitmix(uint64(v)*0x9e3779b97f4a7c15 + 0x1d8e4e27c47d124f)
	layer := func(in, out int, act Activation, gain, bias float64) Layer {
		l := Layer{In: in, Out: out, Act: act, W: make([]float32, in*out), B: make([]float32, out)}
		scale := gain * math.Sqrt(2/float64(in)) // He initialisation
		for i := range l.W {
			l.W[i] = float32(rng.norm() * scale)
		}
		for i := range l.B {
			l.B[i] = float32(bias + 0.05*rng.norm())
		}
		return l
	}
	// The last layer is scaled down and biased negative so scores spread
	// over (0, 1) around a few-percent-to-tens-of-percent click rate instead
	// of saturating at 0 or 1 on N(0,1) features.
	m, err := New(Input, Output, []Layer{
		layer(Width, 64, ReLU, 1, 0),
		layer(64, 32, ReLU, 1, 0),
		layer(32, 1, Sigmoid, 1, -1.0),
	})
	if err != nil {
		panic(fmt.Sprintf("model: shipped CTR network is invalid: %v", err)) // a programming error, caught by tests
	}
	return m
}

// Materialize writes my_model's shipped versions under base
// (<base>/1/model.iom, <base>/2/model.iom), leaving existing version
// directories alone so an operator's edits or removals are not undone.
// It reports whether it wrote anything.
func Materialize(base string) (bool, error) {
	if _, err := os.Stat(base); err == nil {
		return false, nil
	}
	for _, v := range Versions {
		dir := filepath.Join(base, strconv.FormatInt(v, 10))
		if err := Save(dir, CTR(v)); err != nil {
			return false, fmt.Errorf("write shipped %s version %d to %s: %w", Name, v, dir, err)
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
