package rollout

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// side builds a rollout side: n rows at latency lat (jittered), outputs
// drawn from out, calls/errors as given.
func side(rng *rand.Rand, n int, lat time.Duration, out func() float64, calls, errors uint64) fleet.Side {
	h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)
	var d pipeline.Dist
	for range n {
		_ = h.RecordValue(int64(lat/time.Microsecond) + int64(rng.IntN(200)))
		d.Add(out())
	}
	return fleet.Side{Rows: uint64(n), Calls: calls, Errors: errors, Predict: fleet.HistOf(h), Outputs: map[string]pipeline.Dist{"score": d}}
}

func TestGates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	p, err := DefaultOptions().Plan()
	if err != nil {
		t.Fatal(err)
	}
	beta := func(m float64) func() float64 { return func() float64 { return m + rng.NormFloat64()*0.05 } }
	base := side(rng, 5000, 2*time.Millisecond, beta(0.3), 500, 0)
	for _, tc := range []struct {
		name string
		cand fleet.Side
		want map[string]string
		why  string
	}{
		{"healthy", side(rng, 1000, 2*time.Millisecond, beta(0.3), 100, 0), map[string]string{GateLatency: GatePass, GateErrors: GatePass, GatePSI: GatePass}, ""},
		{"few rows", side(rng, 60, 2*time.Millisecond, beta(0.3), 40, 0), map[string]string{GateLatency: GateWait, GatePSI: GateWait}, "60 of 200"},
		// 600 rows of the same distribution: PSI's sampling noise is ~0.02,
		// which is no shift.
		{"few rows, same distribution", side(rng, 600, 2*time.Millisecond, beta(0.3), 40, 0), map[string]string{GatePSI: GatePass}, ""},
		{"slow", side(rng, 1000, 40*time.Millisecond, beta(0.3), 100, 0), map[string]string{GateLatency: GateBreach}, "is over 12.8 ms"},
		{"over the SLO", side(rng, 1000, 150*time.Millisecond, beta(0.3), 100, 0), map[string]string{GateLatency: GateBreach}, "is over"},
		{"failing", side(rng, 1000, 2*time.Millisecond, beta(0.3), 100, 5), map[string]string{GateErrors: GateBreach}, "fail at 5.00%"},
		{"too few calls to judge errors", side(rng, 1000, 2*time.Millisecond, beta(0.3), 10, 1), map[string]string{GateErrors: GateWait}, ""},
		{"shifted", side(rng, 1000, 2*time.Millisecond, beta(0.5), 100, 0), map[string]string{GatePSI: GateBreach}, "output score shifted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "few rows, same distribution" {
				if g := Evaluate(p, tc.cand, base)[2]; !strings.Contains(g.Limit, "sampling noise") {
					t.Fatalf("psi limit %q names no noise allowance", g.Limit)
				}
			}
			gs := Evaluate(p, tc.cand, base)
			by := map[string]Gate{}
			for _, g := range gs {
				by[g.Name] = g
			}
			for name, want := range tc.want {
				if by[name].State != want {
					t.Errorf("%s: %s, want %s (%s)", name, by[name].State, want, by[name])
				}
			}
			state, why := Verdict(gs)
			if tc.why != "" && (why == nil || !strings.Contains(why.Detail, tc.why)) {
				t.Errorf("verdict %s, why %+v: want %q", state, why, tc.why)
			}
		})
	}
	// At 100% the baseline serves nothing: with no reference latency the
	// SLO alone judges.
	g := latencyGate(p, side(rng, 1000, 20*time.Millisecond, beta(0.3), 100, 0), fleet.Side{})
	if g.State != GatePass || !strings.Contains(g.Detail, "SLO alone") {
		t.Fatalf("latency without a baseline: %+v", g)
	}
}

func TestOptions(t *testing.T) {
	for _, bad := range []func(o *Options){
		func(o *Options) { o.Steps = "10,5,100" },
		func(o *Options) { o.Steps = "1,10,50" },
		func(o *Options) { o.Steps = "0,100" },
		func(o *Options) { o.Steps = "x" },
		func(o *Options) { o.Hold = 0 },
		func(o *Options) { o.Shadow = 101 },
		func(o *Options) { o.MaxPSI = 0 },
		func(o *Options) { o.MaxErrorIncrease = 2 },
		func(o *Options) { o.MinSamples = 0 },
		func(o *Options) { o.Warmup = -1 },
		func(o *Options) { o.ShadowOnly = true },
	} {
		o := DefaultOptions()
		bad(&o)
		if _, err := o.Plan(); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: %v, want an error naming the flag", o, err)
		}
	}
	p, err := DefaultOptions().Plan()
	if err != nil || len(p.Steps) != 4 || p.Hold() != 5*time.Minute || p.MinSamples != 200 {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	o := DefaultOptions()
	o.ShadowOnly, o.Shadow = true, 10
	if p, err := o.Plan(); err != nil || !p.ShadowOnly() {
		t.Fatalf("shadow only: %+v %v", p, err)
	}
}
