package rollout

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
)

// testOptions is a short plan whose gates judge on the test's traffic.
func testOptions() Options {
	o := DefaultOptions()
	o.Hold = 6 * time.Second
	o.MinSamples = 40
	o.Warmup = 20
	o.LatencySlack = 40 * time.Millisecond // -race on a small shared machine
	// v1 and v2 are different networks (PSI ~0.13 on thousands of rows);
	// the few dozen rows of a 1% step add sampling noise of about 9/n.
	o.MaxPSI = 1
	return o
}

// A healthy candidate goes 1 -> 10 -> 50 -> 100 percent and is promoted;
// at each step the share of results it served, read from the output
// topic, is within 2 points of the plan.
func TestRolloutHealthyIsPromoted(t *testing.T) {
	e := newEnv(t, modelserver.Config{})
	e.instance("web-1", 2, tfserving.Target{Version: 1})
	e.instance("web-2", 2, tfserving.Target{Version: 1})
	res := e.results()
	e.traffic(1000)
	c := e.controller()
	waitFor(t, "both instances live", 20*time.Second, func() bool { return c.View().Totals.Live == 2 })

	st := &steps{began: map[int]time.Time{}}
	d := NewDriver(DriverConfig{Controller: c, TFServing: e.tfs, Logger: testLog(), Progress: st.progress})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := d.Start(ctx, "2", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if out.State != fleet.RolloutPromoted {
		t.Fatalf("healthy rollout ended %s: %s", out.State, out.Reason)
	}
	end := time.Now()
	plan := []float64{1, 10, 50, 100}
	st.mu.Lock()
	began := st.began
	st.mu.Unlock()
	if len(began) != len(plan) {
		t.Fatalf("saw steps %v, want %d", began, len(plan))
	}
	for i, want := range plan {
		from := began[i].Add(time.Second) // instances apply within ~100 ms; windows settle
		to := end
		if i+1 < len(plan) {
			to = began[i+1]
		}
		got, n := res.share(from, to, 2)
		t.Logf("step %d (%v%%): %.2f%% of %d results from v2", i+1, want, got*100, n)
		if n < 1000 {
			t.Fatalf("step %d: only %d results to measure the share on", i+1, n)
		}
		if math.Abs(got*100-want) > 2 {
			t.Errorf("step %d: candidate served %.2f%% of results, plan %v%%", i+1, got*100, want)
		}
	}
	// Promoted: the desired target is the candidate, every record to v2.
	v := c.View()
	if v.Desired.Target != "2" || v.Rollout.Rollout.Phase != fleet.RolloutPromoted {
		t.Fatalf("after promotion: desired %+v", v.Desired)
	}
	time.Sleep(1500 * time.Millisecond)
	if got, n := res.share(time.Now().Add(-time.Second), time.Now(), 2); n > 0 && got < 1 {
		t.Fatalf("after promotion %.3f of %d results from v2", got, n)
	}
	if s := StatusOf(v); s.State != StatePromoted {
		t.Errorf("status after promotion %s: %s", s.State, s.Summary)
	}
	// The warm-up ran before any record was served by v2.
	var warmed bool
	for _, ev := range v.Events {
		if strings.Contains(ev.Message, "warm: first request") {
			warmed = true
		}
	}
	if !warmed {
		t.Errorf("no warm-up event among the fleet events: %v", v.Events)
	}
}

// Shadow only: only the baseline writes results, and the comparison of
// the two versions' outputs is reported.
func TestRolloutShadowOnly(t *testing.T) {
	e := newEnv(t, modelserver.Config{})
	e.instance("web-1", 2, tfserving.Target{Version: 1})
	res := e.results()
	e.traffic(500)
	c := e.controller()
	waitFor(t, "the instance live", 20*time.Second, func() bool { return c.View().Totals.Live == 1 })
	o := testOptions()
	o.ShadowOnly, o.Shadow, o.Warmup = true, 20, 0
	d := NewDriver(DriverConfig{Controller: c, TFServing: e.tfs, Logger: testLog()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() {
		r, _ := d.Start(ctx, "2", o)
		done <- r
	}()
	started := time.Now()
	var cmp *Comparison
	waitFor(t, "shadow comparisons", 30*time.Second, func() bool {
		s := StatusOf(c.View())
		if s.Comparison == nil || s.Comparison.Shadow == nil || len(s.Comparison.Shadow.Outputs) == 0 || s.Comparison.Shadow.Outputs[0].N < 100 {
			return false
		}
		cmp = s.Comparison
		return true
	})
	sh := cmp.Shadow.Outputs[0]
	if sh.MaxAbsDiff == nil || *sh.MaxAbsDiff <= 0 || *sh.MeanAbsDiff <= 0 || sh.PSI == nil {
		t.Fatalf("shadow comparison %+v: v1 and v2 differ, the difference must show", sh)
	}
	t.Logf("shadow: %d values, max |diff| %.4f, mean %.4f, PSI %.3f; baseline %.1f rows/s", sh.N, *sh.MaxAbsDiff, *sh.MeanAbsDiff, *sh.PSI, cmp.Baseline.RowRate)
	if _, err := Abort(context.Background(), c, "test over"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	cancel()
	if r.State != fleet.RolloutAborted {
		t.Fatalf("driver ended %+v after abort", r)
	}
	rows := res.since(started)
	if len(rows) < 1000 {
		t.Fatalf("only %d results while shadowing", len(rows))
	}
	for _, x := range rows {
		if x.version != 1 {
			t.Fatalf("a result from v%d while v2 only shadowed", x.version)
		}
	}
}

// A candidate made slow or failing on purpose (serve --fault) is rolled
// back automatically at the first step, with the breached gate named,
// and every record goes back to the baseline.
func TestRolloutBadCandidateIsRolledBack(t *testing.T) {
	for _, tc := range []struct {
		name, fault, gate string
	}{
		{"latency", "my_model/2:latency=150ms", GateLatency},
		{"errors", "my_model/2:errors=5%,code=internal", GateErrors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := modelserver.ParseFault(tc.fault)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, modelserver.Config{Faults: []modelserver.Fault{f}})
			e.instance("web-1", 2, tfserving.Target{Version: 1})
			res := e.results()
			e.traffic(1000)
			c := e.controller()
			waitFor(t, "the instance live", 20*time.Second, func() bool { return c.View().Totals.Live == 1 })
			o := testOptions()
			o.Hold, o.Warmup = 30*time.Second, 0
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			out, err := NewDriver(DriverConfig{Controller: c, TFServing: e.tfs, Logger: testLog()}).Start(ctx, "2", o)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if out.State != fleet.RolloutRolledBack || out.Gate == nil || out.Gate.Name != tc.gate {
				t.Fatalf("rollout of a candidate with %s ended %+v, want rolled back on gate %s", tc.fault, out, tc.gate)
			}
			v := c.View()
			r := v.Rollout.Rollout
			if r.Step != 0 || v.Desired.Target != "1" || !strings.Contains(r.Reason, "gate "+tc.gate+" breached") {
				t.Fatalf("rolled back at step %d, target %q, reason %q: want the first step, back to 1, the gate named", r.Step, v.Desired.Target, r.Reason)
			}
			t.Logf("%s: rolled back after %.1f s: %s", tc.name, took.Seconds(), r.Reason)
			waitFor(t, "a fleet event naming the rollback and its gate", 5*time.Second, func() bool {
				for _, ev := range c.View().Events {
					if strings.Contains(ev.Message, "rolled back") && strings.Contains(ev.Message, "gate "+tc.gate) {
						return true
					}
				}
				return false
			})
			if s := StatusOf(v); s.State != StateRolled || !strings.Contains(s.Summary, tc.gate) {
				t.Errorf("status %s: %s", s.State, s.Summary)
			}
			time.Sleep(1500 * time.Millisecond)
			if got, n := res.share(time.Now().Add(-time.Second), time.Now(), 2); n == 0 || got > 0 {
				t.Fatalf("after the rollback %.3f of %d results still from v2", got, n)
			}
		})
	}
}

// Refusals before anything is written: a candidate that is the fleet's
// version under another name, a second rollout, a resume of nothing.
func TestRolloutRefusals(t *testing.T) {
	e := newEnv(t, modelserver.Config{})
	e.instance("web-1", 1, tfserving.Target{}) // latest: version 2
	c := e.controller()
	waitFor(t, "the instance live", 20*time.Second, func() bool { return c.View().Totals.Live == 1 })
	d := NewDriver(DriverConfig{Controller: c, TFServing: e.tfs, Logger: testLog()})
	ctx := context.Background()
	if _, err := d.Start(ctx, "2", testOptions()); err == nil || !strings.Contains(err.Error(), "is version 2, and so is 2") {
		t.Fatalf("latest -> 2 when latest is 2: %v", err)
	}
	if _, err := d.Start(ctx, "7", testOptions()); err == nil || !strings.Contains(err.Error(), "not AVAILABLE") {
		t.Fatalf("a version no host has: %v", err)
	}
	if _, err := d.Resume(ctx); err == nil || !strings.Contains(err.Error(), "no rollout in progress") {
		t.Fatalf("resume without a rollout: %v", err)
	}
	if _, err := Abort(ctx, c, ""); err == nil {
		t.Fatal("abort without a rollout")
	}
	if c.View().Desired != nil {
		t.Fatalf("a refusal wrote the desired state: %+v", c.View().Desired)
	}
	// From latest to 1: the baseline is pinned to the version latest is.
	o := testOptions()
	o.ShadowOnly, o.Shadow, o.Warmup = true, 10, 0
	rctx, cancel := context.WithCancel(ctx)
	go func() { _, _ = d.Start(rctx, "1", o) }()
	waitFor(t, "the rollout written", 20*time.Second, func() bool {
		v := c.View()
		return v.Rollout != nil && v.Rollout.Rollout != nil
	})
	if r := c.View().Rollout.Rollout; r.Baseline != "2" || r.Candidate != "1" {
		t.Fatalf("rollout from latest: baseline %q candidate %q, want 2 and 1", r.Baseline, r.Candidate)
	}
	if _, err := d.Start(ctx, "1", o); !errors.Is(err, ErrInProgress) {
		t.Fatalf("a second rollout: %v", err)
	}
	cancel()
}
