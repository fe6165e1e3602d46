package worker

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// A rollout's split on the real stack: the candidate serves its share of
// records (by key), each result names the version that served it, a key
// keeps its version when the share grows, and the rollout's stats hold
// both sides' rows, latency and output distributions.
func TestSplitByKey(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 2, Target: tfserving.Target{Version: 1}})
	split := Split{ID: "r-test", Baseline: tfserving.Target{Version: 1}, Candidate: tfserving.Target{Version: 2}, Share: 0.3}
	if err := p.SetSplit(&split); err != nil {
		t.Fatal(err)
	}
	in := newInput()
	e.produce(0, 4000, 0, in)
	o := e.collect(in, 60*time.Second)
	v2 := 0
	for k := range in.keys {
		switch o.versions[k] {
		case 2:
			v2++
		case 1:
		default:
			t.Fatalf("%s served by version %d", k, o.versions[k])
		}
	}
	share := float64(v2) / float64(len(in.keys))
	if math.Abs(share-0.3) > 0.03 {
		t.Fatalf("candidate served %.3f of records, the split asks 0.3", share)
	}
	st := p.Stats().Rollout
	if st == nil || st.ID != "r-test" || st.Candidate.Version != 2 || st.Baseline.Version != 1 {
		t.Fatalf("rollout stats %+v", st)
	}
	if st.Candidate.Rows == 0 || st.Baseline.Rows == 0 || st.Candidate.Calls == 0 || st.Candidate.Errors != 0 {
		t.Fatalf("side counters: baseline %+v candidate %+v", st.Baseline, st.Candidate)
	}
	if st.Candidate.Predict.Count == 0 || st.Candidate.EndToEnd.Count == 0 {
		t.Fatalf("candidate latency windows empty: %+v", st.Candidate)
	}
	bo, co := st.Baseline.Outputs[p.outputs[0]], st.Candidate.Outputs[p.outputs[0]]
	// One value per row (one scalar output); the distributions cover the
	// step, the row counts the last 10 s.
	if bo.N < st.Baseline.Rows || co.N < st.Candidate.Rows || bo.N+co.N < 4000 {
		t.Fatalf("output distributions hold %d and %d values for %d and %d rows in the window, 4000 in the step", bo.N, co.N, st.Baseline.Rows, st.Candidate.Rows)
	}
	if m := co.Mean(); m <= 0 || m >= 1 {
		t.Fatalf("candidate's sigmoid output mean %g", m)
	}

	// A larger share keeps the candidate's keys: produce the same keys again.
	split.Share = 0.6
	if err := p.SetSplit(&split); err != nil {
		t.Fatal(err)
	}
	again := newInput()
	e.produce(0, 4000, 0, again) // same ids k0..k3999
	o2 := e.collect(again, 60*time.Second)
	moved := 0
	for k := range in.keys {
		if o.versions[k] == 2 && o2.versions[k] != 2 {
			t.Fatalf("%s left the candidate when its share grew", k)
		}
		if o2.versions[k] == 2 {
			moved++
		}
	}
	if s := float64(moved) / 4000; math.Abs(s-0.6) > 0.03 {
		t.Fatalf("candidate share %.3f after growing to 0.6", s)
	}

	// Ending the rollout sends everything to the target again.
	if err := p.SetSplit(nil); err != nil {
		t.Fatal(err)
	}
	if p.Stats().Rollout != nil || p.CurrentSplit() != nil {
		t.Fatal("rollout stats after the split ended")
	}
}

// Shadow: a sample of the baseline's records also goes to the candidate;
// only baseline results are written, and the two versions' outputs are
// compared.
func TestSplitShadow(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 1, Target: tfserving.Target{Version: 1}})
	if err := p.SetSplit(&Split{ID: "r-shadow", Baseline: tfserving.Target{Version: 1}, Candidate: tfserving.Target{Version: 2}, Shadow: 0.5}); err != nil {
		t.Fatal(err)
	}
	in := newInput()
	for i := 0; i < 10; i++ {
		e.produce(i*200, 200, 0, in)
		time.Sleep(20 * time.Millisecond)
	}
	o := e.collect(in, 60*time.Second)
	for k := range in.keys {
		if o.versions[k] != 1 {
			t.Fatalf("%s written by version %d under a shadow: only the baseline writes", k, o.versions[k])
		}
	}
	var sh *SideStats
	waitFor(t, "shadow comparisons", 10*time.Second, func() bool {
		st := p.Stats().Rollout
		if st == nil || st.Shadowed == nil || st.Shadowed.Rows == 0 {
			return false
		}
		sh = st.Shadowed
		return true
	})
	if sh.Version != 2 || sh.Errors != 0 {
		t.Fatalf("shadow stats %+v", sh)
	}
	d := sh.Diff[p.outputs[0]]
	if d.N != sh.Rows || d.Max <= 0 || d.Mean() <= 0 || d.Mean() > d.Max {
		t.Fatalf("shadow diff %+v over %d rows: v1 and v2 are different networks", d, sh.Rows)
	}
	if sh.Rows+sh.Skipped > 2000 || sh.Rows+sh.Skipped < 500 {
		t.Fatalf("shadow sampled %d+%d of 2000 records at 50%%", sh.Rows, sh.Skipped)
	}
	if psi, ok := pipeline.PSI(p.Stats().Rollout.Baseline.Outputs[p.outputs[0]], sh.Outputs[p.outputs[0]]); !ok {
		t.Fatal("no PSI between baseline and shadow")
	} else {
		t.Logf("v1 vs v2 on %d shadowed rows: max |diff| %.4f, mean %.4f, PSI %.3f", sh.Rows, d.Max, d.Mean(), psi)
	}
}

func TestSplitValidate(t *testing.T) {
	one := tfserving.Target{Version: 1}
	for _, s := range []Split{
		{Baseline: one, Candidate: tfserving.Target{Version: 2}},
		{ID: "x", Baseline: one, Candidate: one},
		{ID: "x", Baseline: one, Candidate: tfserving.Target{Version: 2}, Share: 1.5},
		{ID: "x", Baseline: one, Candidate: tfserving.Target{Version: 2}, Shadow: math.NaN()},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v validated", s)
		}
	}
	// The route of a key is stable and the share is what was asked.
	st := &splitState{Split: Split{ID: "r"}, salt: hashString("r"), cut: fraction(0.1)}
	n := 0
	for i := 0; i < 100000; i++ {
		it := &item{key: []byte("user-" + strconv.Itoa(i))}
		c, _ := st.route(it)
		if c2, _ := st.route(it); c2 != c {
			t.Fatal("route of one key changed")
		}
		if c {
			n++
		}
	}
	if math.Abs(float64(n)/100000-0.1) > 0.005 {
		t.Fatalf("share %.4f of keys for a 10%% split", float64(n)/100000)
	}
}

// BenchmarkRoute is the per-record cost of choosing a record's side.
func BenchmarkRoute(b *testing.B) {
	st := &splitState{Split: Split{ID: "r"}, salt: hashString("r"), cut: fraction(0.1), shadowCut: fraction(0.05)}
	its := make([]*item, 1024)
	for i := range its {
		its[i] = &item{key: []byte("user-" + strconv.Itoa(i*7919))}
	}
	i := 0
	for b.Loop() {
		_, _ = st.route(its[i&1023])
		i++
	}
}
