package fleet

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline"
)

func testRollout(phase string) *Rollout {
	at := time.Unix(1e9, 0).UTC()
	return &Rollout{ID: "r1", Baseline: "1", Candidate: "2", Phase: phase, Step: 1, Share: 10, Shadow: 5,
		Plan: RolloutPlan{Steps: []float64{1, 10, 50, 100}, HoldMs: 60000, SLOMs: 100, MinSamples: 200, MaxPSI: 0.2}, Driver: "a@b pid 1", Started: at, StepAt: at}
}

// The fleet's rollout view is the exact merge of the instances' sides:
// counts add, latency histograms and output distributions merge bin for
// bin, so a percentile of the merge is the percentile of all samples.
func TestRolloutViewMergesExactly(t *testing.T) {
	now := time.Unix(1e9, 0).Add(30 * time.Second).UTC()
	r := testRollout(RolloutCanary)
	d := &Desired{V: ControlSchema, Compat: RolloutSchema, Group: "g", Seq: 3, Target: "1", Rollout: r, By: "a@b", At: now}
	rng := rand.New(rand.NewPCG(1, 2))
	var all pipeline.Dist
	allLat := workerHist()
	var snaps []*Snapshot
	for i, name := range []string{"web-1", "web-2", "web-3"} {
		var out pipeline.Dist
		lat := workerHist()
		for range 500 * (i + 1) {
			x := rng.Float64()
			out.Add(x)
			all.Add(x)
			us := int64(500 + rng.IntN(20000))
			_ = lat.RecordValue(us)
			_ = allLat.RecordValue(us)
		}
		cand := Side{Target: "2", Version: 2, Rows: out.N, Calls: out.N / 10, Errors: uint64(i), Predict: HistOf(lat), Outputs: map[string]pipeline.Dist{"score": out}, FirstMs: float64(10 * (i + 1))}
		snaps = append(snaps, &Snapshot{Schema: SnapshotSchema, Instance: name, Host: name, PID: 1, Time: now, IntervalMs: 1000, Group: "g",
			Control: Control{Mode: ModeFollow, Seq: 3, Offset: 7, Share: -1},
			Rollout: &RolloutSnap{ID: "r1", Share: 10, Shadow: 5, Candidate: cand, Baseline: Side{Target: "1", Rows: 9}}})
	}
	// A fourth instance still at the previous step is pending, not merged.
	snaps = append(snaps, &Snapshot{Schema: SnapshotSchema, Instance: "web-4", Host: "web-4", PID: 1, Time: now, IntervalMs: 1000, Group: "g",
		Control: Control{Mode: ModeFollow, Seq: 2, Offset: 5, Share: -1}, Rollout: &RolloutSnap{ID: "r1", Share: 1, Shadow: 5, Candidate: Side{Rows: 1000}}})
	// Through JSON, as a reader gets them.
	for i, s := range snaps {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if snaps[i], err = DecodeSnapshot(b); err != nil {
			t.Fatal(err)
		}
	}
	v := ViewOf(now, "g", d, 7, snaps, nil)
	rv := v.Rollout
	if rv == nil || len(rv.Instances) != 3 || len(rv.Pending) != 1 || !strings.Contains(rv.Pending[0], "web-4 (at 1%)") {
		t.Fatalf("rollout view: %+v", rv)
	}
	c := rv.Candidate
	got := c.Outputs["score"]
	if got.N != all.N || c.Rows != all.N || c.Errors != 3 || c.FirstMs != 30 || rv.Baseline.Rows != 27 {
		t.Fatalf("merged candidate: n %d rows %d errors %d first %v; baseline rows %d", got.N, c.Rows, c.Errors, c.FirstMs, rv.Baseline.Rows)
	}
	for i, n := range all.Bins {
		if got.Bins[i] != n {
			t.Fatalf("bin %d: merged %d, all samples %d", i, got.Bins[i], n)
		}
	}
	for _, q := range []float64{50, 95, 99} {
		if a, b := c.Predict.Quantile(q), HistOf(allLat).Quantile(q); a != b {
			t.Fatalf("p%v of the merge %v, of all samples %v", q, a, b)
		}
	}
	if psi, ok := pipeline.PSI(all, got); !ok || psi != 0 {
		t.Fatalf("PSI of a distribution with itself: %v %v", psi, ok)
	}
	if rv.DriverLost() != true { // no beat, the step began 30 s ago
		t.Fatal("a rollout without heartbeats is not lost")
	}
}

func TestRolloutValidateAndCompat(t *testing.T) {
	r := testRollout(RolloutCanary)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]func(r *Rollout){
		"same target":  func(r *Rollout) { r.Candidate = "1" },
		"bad phase":    func(r *Rollout) { r.Phase = "sideways" },
		"share":        func(r *Rollout) { r.Share = 120 },
		"steps down":   func(r *Rollout) { r.Plan.Steps = []float64{10, 1} },
		"step index":   func(r *Rollout) { r.Step = 4 },
		"no id":        func(r *Rollout) { r.ID = "" },
		"bad target":   func(r *Rollout) { r.Candidate = "v0" },
		"no steps":     func(r *Rollout) { r.Plan.Steps = nil },
		"zero in plan": func(r *Rollout) { r.Plan.Steps = []float64{0, 100} },
	} {
		c := r.clone()
		bad(c)
		if c.Validate() == nil {
			t.Errorf("%s: validated", name)
		}
	}
	if sp, _ := testRollout(RolloutWarming).Split(); sp == nil || sp.Share != 0 || sp.Shadow != 1 {
		t.Fatalf("warming split %+v: every record mirrored, none served", sp)
	}
	if sp, _ := testRollout(RolloutRolledBack).Split(); sp != nil {
		t.Fatal("an ended rollout still splits")
	}
	shadowOnly := testRollout(RolloutCanary)
	shadowOnly.Plan.Steps, shadowOnly.Step, shadowOnly.Share = []float64{0}, 0, 0
	if err := shadowOnly.Validate(); err != nil || !shadowOnly.Plan.ShadowOnly() {
		t.Fatalf("shadow-only plan: %v", err)
	}
}

func FuzzDecodeDriverBeat(f *testing.F) {
	b, _ := json.Marshal(DriverBeat{Group: "g", ID: "r1", Driver: "a@b pid 1", Time: time.Unix(1e9, 0).UTC(), Status: json.RawMessage(`{"message":"x"}`)})
	f.Add(b)
	f.Add([]byte(`{"group":"g","id":"r","time":"2026-01-01T00:00:00Z","status":[1,2]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDriverBeat(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeDriverBeat(out); err != nil {
			t.Fatalf("re-decoding an accepted beat: %v", err)
		}
	})
}
