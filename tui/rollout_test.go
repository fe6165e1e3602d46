package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// withRollout is the embedded fleet fixture in the middle of a gradual
// rollout from version 1 to 2: step 2 of 4 (10%), 3 m 12 s of a 5 m hold,
// the latency and error gates passing, the PSI gate still waiting for
// candidate values, and a 5% shadow.
func withRollout(d Data) Data {
	d = embeddedFleet(d)
	d.Rollout = RolloutData{At: d.Now, DefaultPlan: "steps 1,10,50,100% · hold 5m · gates p99 ≤ SLO 100ms and baseline +25% +10ms, errors ≤ baseline +1 pt, PSI < 0.2, after 200 rows",
		State: RolloutCanary, ID: "r-7f3a", Baseline: "1", Candidate: "2", Steps: []float64{1, 10, 50, 100}, Step: 1, Share: 10, Shadow: 5,
		StepElapsed: 192 * time.Second, Hold: 5 * time.Minute, PassingFor: 150 * time.Second, Message: "holding 10% (192 s of 300 s, waiting on psi)",
		Driver: "alice@ops-1 pid 4242", DriverAlive: true, DriverAge: 400 * time.Millisecond, Instances: 1, GatesBy: "driver",
		Summary: "rollout r-7f3a 1 -> 2: step 2/4, 10% to 2, driven by alice@ops-1 pid 4242",
		Gates: []RolloutGate{
			{Name: "latency", State: GatePass, Value: "p99 7.9 ms", Limit: "<= 19 ms (SLO 100 ms; baseline p99 7.4 ms +25% +10 ms)"},
			{Name: "errors", State: GatePass, Value: "0.00% of Predicts failed, 0.41% of rows rejected", Limit: "<= 1.00% failed, 1.40% rejected"},
			{Name: "psi", State: GateWait, Value: "-", Limit: "< 0.20", Detail: "score 118/200 candidate, 1204/200 baseline values"},
		},
		Comparison: &RolloutComparison{
			Baseline: RolloutSide{Target: "1", Version: 1, RowRate: 1071, Predict: Percentiles{P50: ms(2.9), P95: ms(5.1), P99: ms(7.4)}, E2EP99: ms(31), ErrorRate: 0, DLQRate: 0.0098,
				Outputs: []RolloutOutput{{Name: "score", N: 10712, Mean: 0.1832, P50: 0.1511, P90: 0.3702, P99: 0.6104, PSI: -1, MaxDiff: -1, MeanDiff: -1}}},
			Candidate: RolloutSide{Target: "2", Version: 2, RowRate: 119, Predict: Percentiles{P50: ms(3.1), P95: ms(5.6), P99: ms(7.9)}, E2EP99: ms(33), ErrorRate: 0, DLQRate: 0.0041,
				Outputs: []RolloutOutput{{Name: "score", N: 118, Mean: 0.1907, P50: 0.1588, P90: 0.3811, P99: 0.6322, PSI: 0.031, MaxDiff: -1, MeanDiff: -1}}},
			Shadow: &RolloutSide{Target: "2", Version: 2, RowRate: 53, Predict: Percentiles{P50: ms(3.0), P95: ms(5.4), P99: ms(7.7)}, E2EP99: -1, ErrorRate: 0, DLQRate: -1,
				Outputs: []RolloutOutput{{Name: "score", N: 531, Mean: 0.1899, P50: 0.1570, P90: 0.3790, P99: 0.6290, PSI: 0.027, MaxDiff: 0.0912, MeanDiff: 0.0113}}},
		},
		Advice: "inferops rollout promote (skip the remaining steps) or inferops rollout abort"}
	d.Header.Target = "1"
	return d
}

// withHeldRollout is the same rollout after its driver died: the fleet
// holds 10% and the gates are this console's own judgement.
func withHeldRollout(d Data) Data {
	d = withRollout(d)
	r := &d.Rollout
	r.State, r.DriverAlive, r.DriverAge, r.GatesBy, r.Message, r.PassingFor = RolloutHolding, false, 47*time.Second, "this process", "", 0
	r.Advice = "inferops rollout resume (continue the plan from this step here) or inferops rollout abort (everything back to 1)"
	return d
}

// withRolledBack is a rollout the latency gate rolled back at the first
// step.
func withRolledBack(d Data) Data {
	d = withRollout(d)
	r := &d.Rollout
	r.State, r.Step, r.Share, r.Comparison, r.Shadow = RolloutRolledBack, 0, 0, nil, 0
	r.Reason = "latency breach: candidate Predict p99 61 ms is over 19 ms"
	r.Gates = []RolloutGate{{Name: "latency", State: GateBreach, Value: "p99 61 ms", Limit: "<= 19 ms", Detail: "candidate Predict p99 61 ms is over 19 ms"}}
	r.Advice = ""
	return d
}

// rollRec is a fleet backend that runs rollouts and records each call.
type rollRec struct {
	fleetNop
	calls []string
	err   error
}

func (b *rollRec) StartRollout(_ context.Context, to string) (string, error) {
	return b.rec("start "+to, "rollout r-1 to "+to+" started: warming it up")
}
func (b *rollRec) PromoteRollout(context.Context) (string, error) {
	return b.rec("promote", "promoted 2")
}
func (b *rollRec) AbortRollout(context.Context) (string, error) { return b.rec("abort", "aborted") }
func (b *rollRec) ResumeRollout(context.Context) (string, error) {
	return b.rec("resume", "resumed at 10%")
}
func (b *rollRec) rec(call, ack string) (string, error) {
	b.calls = append(b.calls, call)
	return ack, b.err
}

// TestRolloutGoldens: the rollout panel at the three sizes (beside the
// lag table at 120x40, where a new rollout comes to the front of its
// slot; focused with R at 100x30 and 80x24), held by a lost driver,
// rolled back, and the version menu's second step.
func TestRolloutGoldens(t *testing.T) {
	cases := []struct {
		name string
		w, h int
		data Data
		keys []string
	}{
		{"rollout_120x40", 120, 40, withRollout(fixture(12)), nil},
		{"rollout_100x30", 100, 30, withRollout(fixture(12)), []string{"R"}},
		{"rollout_80x24", 80, 24, withRollout(fixture(12)), []string{"R"}},
		{"rollout_holding_80x24", 80, 24, withHeldRollout(fixture(12)), []string{"R"}},
		{"rollout_holding_120x40", 120, 40, withHeldRollout(fixture(12)), nil},
		{"rollout_rolled_back_100x30", 100, 30, withRolledBack(fixture(12)), []string{"R"}},
		{"rollout_mode_80x24", 80, 24, withRollout(fixture(12)), []string{"v", "down", "down", "enter", "down"}},
		{"rollout_fleet_120x40", 120, 40, withRollout(withWorkerFleet(fixture(12), 6, 2)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewStatic(tc.data, true)
			m.opt.Backend = &rollRec{fleetNop: fleetNop{nopBackend{tc.data}}}
			m.SetSize(tc.w, tc.h)
			press(m, tc.keys...)
			golden(t, m, tc.name, tc.w, tc.h)
		})
	}
}

// TestRolloutKeys: the version menu's "roll out gradually" asks first and
// starts the rollout; P, A and C on the panel ask, then promote, abort or
// resume; resume is refused while the driver is alive, and everything is
// refused read-only or without a rollout.
func TestRolloutKeys(t *testing.T) {
	screen := func(m *Model) string { return ansi.Strip(m.View().Content) }
	run := func(d Data, keys ...string) (*Model, *rollRec) {
		b := &rollRec{fleetNop: fleetNop{nopBackend{d}}}
		m := NewStatic(d, true)
		m.opt.Backend = b
		m.SetSize(120, 40)
		drive(m, keys...)
		return m, b
	}
	ended := withRolledBack(fixture(12))
	ended.Rollout.State = RolloutPromoted
	cases := []struct {
		name  string
		data  Data
		keys  []string
		calls string
		shows string
	}{
		{"roll out asks", withRolledBack(fixture(12)), []string{"v", "down", "down", "enter", "down", "enter"}, "", "roll my_model of group tf_serving_group out gradually to version 2  AVAILABLE (steps 1,10,50,100%"},
		{"roll out y", withRolledBack(fixture(12)), []string{"v", "down", "down", "enter", "down", "enter", "y"}, "start 2", "rollout r-1 to 2 started"},
		{"roll out n", withRolledBack(fixture(12)), []string{"v", "down", "down", "enter", "down", "enter", "n"}, "", "cancelled"},
		{"switch now is today's switch", withRolledBack(fixture(12)), []string{"v", "down", "enter", "enter"}, "", "target the fleet to 1: static"},
		{"a second rollout is refused", withRollout(fixture(12)), []string{"v", "down", "down", "enter", "down", "enter"}, "", "rollout r-7f3a to 2 is still active: promote or abort it first"},
		{"P asks", withRollout(fixture(12)), []string{"R", "P"}, "", "promote 2 now: every record to 2, skipping the remaining steps?"},
		{"P y", withRollout(fixture(12)), []string{"R", "P", "y"}, "promote", "promoted 2"},
		{"A y", withRollout(fixture(12)), []string{"R", "A", "y"}, "abort", "aborted"},
		{"P unfocused does nothing", withRollout(fixture(12)), []string{"P", "y"}, "", ""},
		{"C with a live driver", withRollout(fixture(12)), []string{"R", "C"}, "", "cannot resume: rollout r-7f3a is driven by alice@ops-1 pid 4242, which is alive"},
		{"C y when held", withHeldRollout(fixture(12)), []string{"R", "C", "y"}, "resume", "resumed at 10%"},
		{"A after the end", ended, []string{"R", "A"}, "", "cannot abort the rollout: no rollout is active"},
		{"R without a rollout", fixture(12), []string{"R"}, "", "no rollout: start one from the version menu"},
		{"read-only", attachedReadOnly(withRollout(fixture(12))), []string{"R", "A"}, "", "cannot abort the rollout: read-only (--read-only)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, b := run(tc.data, tc.keys...)
			if got := strings.Join(b.calls, ","); got != tc.calls {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			if scr := screen(m); tc.shows != "" && !strings.Contains(scr, tc.shows) {
				t.Errorf("screen lacks %q:\n%s", tc.shows, scr)
			}
		})
	}
	t.Run("a refused start says what was asked", func(t *testing.T) {
		d := withRolledBack(fixture(12))
		b := &rollRec{fleetNop: fleetNop{nopBackend{d}}, err: errors.New("rollout: version 2 is not AVAILABLE on 10.0.0.13:8500")}
		m := NewStatic(d, true)
		m.opt.Backend = b
		m.SetSize(120, 40)
		drive(m, "v", "down", "down", "enter", "down", "enter", "y")
		if scr := screen(m); !strings.Contains(scr, "roll out 2: rollout: version 2 is not AVAILABLE") {
			t.Errorf("screen:\n%s", scr)
		}
	})
	t.Run("tab passes the panel only while there is a rollout", func(t *testing.T) {
		m := NewStatic(fixture(12), true)
		for range numPanels {
			press(m, "tab")
			if m.focus == pRollout {
				t.Fatal("tab reached the rollout panel without a rollout")
			}
		}
		m = NewStatic(withRollout(fixture(12)), true)
		press(m, "shift+tab")
		if m.focus != pRollout {
			t.Fatalf("shift+tab from lag: focus %d, want the rollout panel", m.focus)
		}
		m.setData(fixture(12)) // the rollout is gone from the desired state
		if m.focus != pLag {
			t.Fatalf("focus %d after the rollout went, want lag", m.focus)
		}
	})
}
