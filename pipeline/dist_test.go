package pipeline

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

func TestDistBinsAreOrderedAndFine(t *testing.T) {
	prev := DistBin(-1e30)
	for x := -1e6; x < 1e6; x = next(x) {
		b := DistBin(x)
		if b < prev {
			t.Fatalf("bin of %g is %d, below the previous %d: bins must follow value order", x, b, prev)
		}
		prev = b
		if x != 0 && math.Abs(x) > 1e-9 && math.Abs(x) < 1e9 {
			if v := distBinValue(b); math.Abs(v-x)/math.Abs(x) > 1.0/DistSubBins {
				t.Fatalf("bin %d of %g stands for %g: more than 1/%d off", b, x, v, DistSubBins)
			}
		}
	}
}

// next walks the real line in steps that visit every octave several times.
func next(x float64) float64 {
	switch {
	case x < -1e-6:
		return x * 0.93
	case x < 1e-6:
		return 1e-6
	default:
		return x * 1.07
	}
}

func TestDistQuantileMeanAndMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a, b, all Dist
	sum := 0.0
	for i := range 20000 {
		x := r.Float64()
		sum += x
		all.Add(x)
		if i%2 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	a.Add(math.NaN())
	m := a.Clone()
	m.Merge(b)
	if m.N != all.N || m.NonFinite != 1 || math.Abs(m.Sum-all.Sum) > 1e-9 {
		t.Fatalf("merge: n %d sum %g nonfinite %d, want n %d sum %g nonfinite 1", m.N, m.Sum, m.NonFinite, all.N, all.Sum)
	}
	for i, c := range all.Bins {
		if m.Bins[i] != c {
			t.Fatalf("merged bin %d has %d, the whole %d", i, m.Bins[i], c)
		}
	}
	if got := m.Mean(); math.Abs(got-sum/20000) > 1e-12 {
		t.Fatalf("mean %g, want %g", got, sum/20000)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if got := m.Quantile(q); math.Abs(got-q) > 0.02 {
			t.Errorf("uniform quantile %g = %g, want within 0.02", q, got)
		}
	}
	if a.Clone().Bins[DistBin(0.5)] != a.Bins[DistBin(0.5)] {
		t.Fatal("clone lost counts")
	}
}

func TestPSI(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sample := func(n int, f func() float64) Dist {
		var d Dist
		for range n {
			d.Add(f())
		}
		return d
	}
	base := sample(20000, func() float64 { return r.NormFloat64()*0.1 + 0.3 })
	same := sample(20000, func() float64 { return r.NormFloat64()*0.1 + 0.3 })
	shifted := sample(20000, func() float64 { return r.NormFloat64()*0.1 + 0.45 })
	if p, ok := PSI(base, same); !ok || p > 0.01 {
		t.Errorf("PSI of two samples of one distribution = %.4f (ok %v), want < 0.01", p, ok)
	}
	if p, _ := PSI(base, shifted); p < 0.5 {
		t.Errorf("PSI of a shift by 1.5 sd = %.4f, want > 0.5 (significant)", p)
	}
	if _, ok := PSI(base, Dist{}); ok {
		t.Error("PSI against an empty distribution must be unknown")
	}
	// One bin holds everything: a single group, PSI still finite.
	var c1, c2 Dist
	for range 100 {
		c1.Add(1)
		c2.Add(2)
	}
	if p, ok := PSI(c1, c2); !ok || math.IsInf(p, 0) || p < 1 {
		t.Errorf("PSI of disjoint constants = %g (ok %v), want large and finite", p, ok)
	}
}

func TestDistJSON(t *testing.T) {
	var d Dist
	for _, x := range []float64{-3, -0.001, 0, 0.2, 0.2, 7e5, math.Inf(1)} {
		d.Add(x)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Dist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if back.N != d.N || back.Sum != d.Sum || back.NonFinite != 1 || len(back.Bins) != len(d.Bins) || back.Bins[DistBin(0.2)] != 2 {
		t.Fatalf("round trip %s: %+v, want %+v", b, back, d)
	}
	for _, bad := range []string{
		`{"n":2,"bins":[[1,1]]}`,        // counts do not add up
		`{"n":2,"bins":[[1,1],[1,1]]}`,  // repeated
		`{"n":1,"bins":[[99999999,1]]}`, // out of range
		`{"n":1,"bins":[[1,0]]}`,        // empty bin
		`{"n":1,"bins":[[18446744073709551615,1]]}`,
		`[1,2]`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s decoded, want an error", bad)
		}
	}
}

func FuzzDistJSON(f *testing.F) {
	f.Add([]byte(`{"n":3,"sum":1.5,"bins":[[1,1],[4294967295,2]]}`))
	f.Add([]byte(`{"n":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Dist
		if err := json.Unmarshal(b, &d); err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again Dist
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%s re-encoded as %s, which does not decode: %v", b, out, err)
		}
		_ = d.Quantile(0.5)
		_, _ = PSI(d, again)
	})
}

// BenchmarkDistAdd is the per-value cost a rollout adds to each numeric
// output element the worker writes.
func BenchmarkDistAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	xs := make([]float64, 4096)
	for i := range xs {
		xs[i] = r.Float64()
	}
	var d Dist
	i := 0
	for b.Loop() {
		d.Add(xs[i&4095])
		i++
	}
}

// BenchmarkPSI compares two fleet-merged distributions of 100k values, as
// the driver does every second per output.
func BenchmarkPSI(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	var x, y Dist
	for range 100_000 {
		x.Add(r.NormFloat64()*0.1 + 0.3)
		y.Add(r.NormFloat64()*0.1 + 0.31)
	}
	for b.Loop() {
		_, _ = PSI(x, y)
	}
}
