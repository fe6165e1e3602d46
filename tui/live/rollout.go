package live

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/rollout"
	"github.com/inferops/inferops/tui"
)

// rollState is the rollout this console drives, if any: one driver
// goroutine, owned by the adapter and ended with Run's context. Ending it
// leaves the fleet holding its step (the engine's design: nothing advances
// unobserved) until someone resumes or aborts it.
type rollState struct {
	id      string        // the rollout driven, once seen in the desired state
	running chan struct{} // closed when the driver returns; nil: none runs
}

// rolloutOptions is the plan "roll out gradually" starts: the config's,
// else the engine's defaults.
func (a *Adapter) rolloutOptions() rollout.Options {
	if a.cfg.Rollout.Steps != "" {
		return a.cfg.Rollout
	}
	return rollout.DefaultOptions()
}

// planLine is a plan in one line for the version menu.
func planLine(o rollout.Options) string {
	s := fmt.Sprintf("steps %s%% · hold %s", o.Steps, o.Hold)
	if o.Shadow > 0 {
		s += fmt.Sprintf(" · shadow %.4g%%", o.Shadow)
	}
	s += fmt.Sprintf(" · gates p99 ≤ SLO %s and baseline +%.0f%% +%s, errors ≤ baseline +%.4g pt, PSI < %.4g, after %d rows",
		o.SLO, o.LatencyTolerance*100, o.LatencySlack, o.MaxErrorIncrease*100, o.MaxPSI, o.MinSamples)
	if o.Warmup > 0 {
		s += fmt.Sprintf(" · warm-up %d records", o.Warmup)
	}
	return s
}

// rolloutLocked folds the group's rollout, as the engine's status reads
// it from the same View, into the rollout panel's data.
func (a *Adapter) rolloutLocked(v fleet.View) {
	a.d.Rollout = rolloutData(rollout.StatusOf(v), planLine(a.rolloutOptions()))
}

func rolloutData(st rollout.Status, defaultPlan string) tui.RolloutData {
	d := tui.RolloutData{At: st.Time, DefaultPlan: defaultPlan, Summary: st.Summary, Advice: st.Advice}
	r := st.Rollout
	if r == nil || st.State == rollout.StateNone {
		return d
	}
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	d.State, d.ID, d.Baseline, d.Candidate = st.State, r.ID, r.Baseline, r.Candidate
	d.Steps, d.Step, d.Share, d.Shadow, d.Reason = slices.Clone(r.Plan.Steps), r.Step, r.Share, r.Shadow, r.Reason
	d.StepElapsed, d.Hold = secs(st.StepSeconds), secs(st.HoldSeconds)
	d.Driver, d.DriverAlive, d.DriverAge = st.Driver, st.DriverAlive, secs(st.DriverAge)
	d.Instances, d.Pending, d.GatesBy = len(st.Instances), st.Pending, st.GatesBy
	if ds := st.Driving; ds != nil {
		d.PassingFor, d.Message = secs(ds.PassingFor), ds.Message
		if ds.Warmup != nil {
			d.Warmup = ds.Warmup.String()
		}
	}
	for _, g := range st.Gates {
		d.Gates = append(d.Gates, tui.RolloutGate{Name: g.Name, State: g.State, Value: g.Value, Limit: g.Limit, Detail: g.Detail})
	}
	if c := st.Comparison; c != nil {
		d.Comparison = &tui.RolloutComparison{Baseline: rolloutSide(c.Baseline), Candidate: rolloutSide(c.Candidate)}
		if c.Shadow != nil {
			s := rolloutSide(*c.Shadow)
			d.Comparison.Shadow = &s
		}
	}
	return d
}

func rolloutSide(s rollout.SideSummary) tui.RolloutSide {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	orNeg := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	out := tui.RolloutSide{Target: s.Target, Version: s.Version, RowRate: s.RowRate,
		Predict: tui.Percentiles{P50: ms(s.Predict.P50ms), P95: ms(s.Predict.P95ms), P99: ms(s.Predict.P99ms), Max: ms(s.Predict.MaxMs)},
		E2EP99:  ms(s.EndToEnd.P99ms), ErrorRate: orNeg(s.ErrorRate), DLQRate: orNeg(s.DLQRate)}
	for _, o := range s.Outputs {
		out.Outputs = append(out.Outputs, tui.RolloutOutput{Name: o.Name, N: o.N, Mean: o.Mean, P50: o.P50, P90: o.P90, P99: o.P99,
			PSI: orNeg(o.PSI), MaxDiff: orNeg(o.MaxAbsDiff), MeanDiff: orNeg(o.MeanAbsDiff)})
	}
	return out
}

// rolloutEnded is how a rollout's end reads in the event log.
func rolloutEnded(id, state, reason string) string {
	s := fmt.Sprintf("rollout %s %s", id, strings.ReplaceAll(state, "_", " "))
	if reason != "" {
		s += ": " + reason
	}
	return s
}
