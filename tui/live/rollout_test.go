package live

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/rollout"
	"github.com/inferops/inferops/tui"
)

// TestRolloutIntoData: the engine's status of a fleet View becomes the
// rollout panel's data: the plan and its step, the hold, the driver's
// gates and message while its heartbeat is fresh, HOLDING with this
// process's own gates once it is stale, and no rollout at all when the
// group has none.
func TestRolloutIntoData(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 4, 5, 0, time.UTC)
	plan, err := rollout.Options{Steps: "1,10,50,100", Hold: time.Minute, SLO: 100 * time.Millisecond, MaxPSI: 0.2, MinSamples: 200}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	r := &fleet.Rollout{ID: "r-1", Baseline: "1", Candidate: "2", Phase: fleet.RolloutCanary, Step: 1, Share: 10, Shadow: 5, Plan: plan,
		Driver: "alice@ops-1 pid 42", Started: now.Add(-2 * time.Minute), StepAt: now.Add(-40 * time.Second)}
	ds, _ := json.Marshal(rollout.DriverStatus{Message: "holding 10% (40 s of 60 s, gates pass)", PassingFor: 30,
		Gates: []rollout.Gate{{Name: rollout.GateLatency, State: rollout.GatePass, Value: "p99 7 ms", Limit: "<= 19 ms"}}})
	view := func(beatAge time.Duration) fleet.View {
		return fleet.View{Time: now, Group: "g", Rollout: &fleet.RolloutView{Rollout: r, Instances: []string{"web-01"}, Pending: []string{"web-02 (at 1%)"},
			Driver: &fleet.DriverBeat{Group: "g", ID: "r-1", Driver: r.Driver, Time: now.Add(-beatAge), Status: ds}, DriverAge: beatAge}}
	}
	d := rolloutData(rollout.StatusOf(view(500*time.Millisecond)), "plan")
	if d.State != tui.RolloutCanary || !d.Active() || d.ID != "r-1" || d.Step != 1 || d.Share != 10 || d.Shadow != 5 || len(d.Steps) != 4 ||
		d.Hold != time.Minute || d.StepElapsed != 40*time.Second || !d.DriverAlive || d.Instances != 1 || len(d.Pending) != 1 {
		t.Fatalf("canary: %+v", d)
	}
	if d.Message != "holding 10% (40 s of 60 s, gates pass)" || d.PassingFor != 30*time.Second || d.GatesBy != "driver" ||
		len(d.Gates) != 1 || d.Gates[0] != (tui.RolloutGate{Name: "latency", State: "pass", Value: "p99 7 ms", Limit: "<= 19 ms"}) {
		t.Errorf("the driver's judgement: %+v", d)
	}
	if d.Comparison == nil || d.Comparison.Candidate.ErrorRate != -1 || d.Comparison.Shadow != nil || d.DefaultPlan != "plan" {
		t.Errorf("comparison %+v: want both sides, error rates unknown without Predicts, no shadow side yet", d.Comparison)
	}

	d = rolloutData(rollout.StatusOf(view(10*time.Second)), "")
	if d.State != tui.RolloutHolding || d.DriverAlive || d.DriverAge != 10*time.Second || d.GatesBy != "this process" || len(d.Gates) != 3 ||
		!strings.Contains(d.Advice, "inferops rollout resume") {
		t.Fatalf("driver lost: %+v", d)
	}

	if d := rolloutData(rollout.StatusOf(fleet.View{Time: now, Group: "g"}), "plan"); d.Exists() || d.DefaultPlan != "plan" {
		t.Errorf("no rollout: %+v", d)
	}
	if got := planLine(rollout.DefaultOptions()); got != "steps 1,10,50,100% · hold 5m0s · gates p99 ≤ SLO 100ms and baseline +25% +10ms, errors ≤ baseline +1 pt, PSI < 0.2, after 200 rows · warm-up 100 records" {
		t.Errorf("default plan line %q", got)
	}
}
