package report

import (
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/fleet/fleettest"
	"github.com/inferops/inferops/rollout"
)

// A rollout in the report: the summary line, its own section with the
// plan, the gates as judged and the comparison, and no secret in its free
// text.
func TestReportRollout(t *testing.T) {
	const secret = "Rollout-Report-Secret-44"
	now := time.Date(2026, 11, 24, 15, 40, 2, 0, time.UTC)
	v := fleettest.View(now, 2, 2)
	at := now.Add(-90 * time.Second)
	v.Desired = &fleet.Desired{V: fleet.ControlSchema, Group: v.Group, Seq: 9, Target: "1", By: "sre@ops-1", At: at,
		Rollout: &fleet.Rollout{ID: "r20261124-153832", Baseline: "1", Candidate: "2", Phase: fleet.RolloutCanary, Step: 1, Share: 10,
			Plan:   fleet.RolloutPlan{Steps: []float64{1, 10, 50, 100}, HoldMs: 300000, SLOMs: 100, MinSamples: 200, MaxPSI: 0.2},
			Driver: "sre@ops-1 pid 4242 " + secret, Started: at, StepAt: at}}
	v.Rollout = &fleet.RolloutView{Rollout: v.Desired.Rollout}
	st := rollout.StatusOf(v)
	st.Gates = []rollout.Gate{{Name: rollout.GateLatency, State: rollout.GatePass, Value: "p99 7.9 ms", Limit: "<= 19 ms"},
		{Name: rollout.GateErrors, State: rollout.GateBreach, Value: "5.00%", Limit: "<= 1.00%", Detail: "failing " + secret}}
	in := moment()
	in.Secrets = []string{secret}
	in.Rollout = &st
	r := Build(in)
	md := r.Markdown()
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Rollout `r20261124-153832`: `1` -> `2` (CANARY)", "1% -> **10%** -> 50% -> 100%", "| errors", "BREACH", "rollout promote"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	var line bool
	for _, s := range r.Summary {
		line = line || strings.HasPrefix(s, "Rollout: rollout r20261124-153832")
	}
	if !line {
		t.Errorf("no rollout line in the summary: %q", r.Summary)
	}
	for name, out := range map[string]string{"markdown": md, "json": string(js)} {
		if strings.Contains(out, secret) {
			t.Errorf("%s contains the secret", name)
		}
	}
}
