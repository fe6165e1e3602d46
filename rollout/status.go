package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// States of a rollout as Status reports it.
const (
	StateNone     = "none"
	StateWarming  = fleet.RolloutWarming
	StateCanary   = fleet.RolloutCanary
	StateHolding  = "holding" // active, its driver lost: the step holds
	StatePromoted = fleet.RolloutPromoted
	StateRolled   = fleet.RolloutRolledBack
	StateAborted  = fleet.RolloutAborted
)

// windowSeconds is the span of the workers' windows the sides cover.
const windowSeconds = 10

// SideSummary is one side of the comparison, for tables and JSON.
type SideSummary struct {
	Target    string          `json:"target"`
	Version   int64           `json:"version,omitempty"`
	Rows      uint64          `json:"rows"` // in the window
	RowRate   float64         `json:"rows_per_s"`
	Calls     uint64          `json:"calls"`
	Errors    uint64          `json:"errors"`
	ErrorRate *float64        `json:"error_rate"` // null without Predicts
	DLQ       uint64          `json:"dlq"`
	DLQRate   *float64        `json:"dlq_rate"`
	Predict   fleet.Latency   `json:"predict_latency"`
	EndToEnd  fleet.Latency   `json:"end_to_end_latency"`
	Outputs   []OutputSummary `json:"outputs,omitempty"`
}

// OutputSummary is one numeric output's distribution on a side.
type OutputSummary struct {
	Name string   `json:"name"`
	N    uint64   `json:"n"`
	Mean float64  `json:"mean"`
	P50  float64  `json:"p50"`
	P90  float64  `json:"p90"`
	P99  float64  `json:"p99"`
	PSI  *float64 `json:"psi,omitempty"` // against the baseline (candidate and shadow)
	// Shadow only: |candidate - baseline| over the compared elements.
	MaxAbsDiff  *float64 `json:"max_abs_diff,omitempty"`
	MeanAbsDiff *float64 `json:"mean_abs_diff,omitempty"`
}

// Comparison is baseline and candidate side by side (and the shadow).
type Comparison struct {
	Baseline  SideSummary  `json:"baseline"`
	Candidate SideSummary  `json:"candidate"`
	Shadow    *SideSummary `json:"shadow,omitempty"`
}

func f64(v float64) *float64 { return &v }

func summarize(s fleet.Side, base *fleet.Side) SideSummary {
	out := SideSummary{Target: s.Target, Version: s.Version, Rows: s.Rows, RowRate: float64(s.Rows) / windowSeconds,
		Calls: s.Calls, Errors: s.Errors, DLQ: s.DLQ, Predict: s.Predict.Summary(), EndToEnd: s.EndToEnd.Summary()}
	if r, ok := s.ErrorRate(); ok {
		out.ErrorRate = f64(r)
	}
	if s.Rows+s.DLQ > 0 {
		out.DLQRate = f64(float64(s.DLQ) / float64(s.Rows+s.DLQ))
	}
	for _, name := range sortedKeys(s.Outputs) {
		d := s.Outputs[name]
		o := OutputSummary{Name: name, N: d.N, Mean: d.Mean(), P50: d.Quantile(0.5), P90: d.Quantile(0.9), P99: d.Quantile(0.99)}
		if base != nil {
			if v, ok := pipeline.PSI(base.Outputs[name], d); ok {
				o.PSI = f64(v)
			}
		}
		if df, ok := s.Diff[name]; ok {
			o.MaxAbsDiff, o.MeanAbsDiff = f64(df.Max), f64(df.Mean())
		}
		out.Outputs = append(out.Outputs, o)
	}
	return out
}

// Compare summarises a rollout view's sides; ref is the baseline the
// candidate's PSI is computed against (the view's own when nil).
func Compare(rv *fleet.RolloutView, ref *fleet.Side) Comparison {
	if ref == nil {
		ref = &rv.Baseline
	}
	c := Comparison{Baseline: summarize(rv.Baseline, nil), Candidate: summarize(rv.Candidate, ref)}
	if rv.Shadowed != nil {
		s := summarize(*rv.Shadowed, &rv.Baseline)
		c.Shadow = &s
	}
	return c
}

// DriverStatus is what a driver publishes with each heartbeat: its last
// judgement, so every reader shows the gates the driver acts on.
type DriverStatus struct {
	Gates       []Gate        `json:"gates,omitempty"`
	Message     string        `json:"message"`                 // what it is doing: "holding 10% (32 s of 60 s, gates pass)"
	PassingFor  float64       `json:"passing_for_s,omitempty"` // seconds every gate has passed in a row this step
	Warmup      *WarmupResult `json:"warmup,omitempty"`
	RefFromStep int           `json:"ref_from_step"` // the step whose baseline the gates compare with (-1 warming)
	Decided     string        `json:"decided,omitempty"`
}

// Status is a group's rollout for people and scripts: `inferops rollout
// status [--json]`, the console's rollout panel and the triage report.
type Status struct {
	Time        time.Time      `json:"time"`
	Group       string         `json:"group"`
	State       string         `json:"state"`
	Summary     string         `json:"summary"` // one line
	Rollout     *fleet.Rollout `json:"rollout,omitempty"`
	StepPercent float64        `json:"step_percent"`
	StepOf      string         `json:"step_of,omitempty"` // "2/4"
	StepSeconds float64        `json:"step_seconds"`      // in the current step (or phase)
	HoldSeconds float64        `json:"hold_seconds"`
	Driver      string         `json:"driver,omitempty"`
	DriverAlive bool           `json:"driver_alive"`
	DriverAge   float64        `json:"driver_age_seconds,omitempty"`
	Instances   []string       `json:"instances,omitempty"` // live instances at the step's share
	Pending     []string       `json:"pending,omitempty"`   // live instances not (yet) at it
	Gates       []Gate         `json:"gates,omitempty"`
	GatesBy     string         `json:"gates_by,omitempty"` // "driver" or "this process" (driver lost)
	Comparison  *Comparison    `json:"comparison,omitempty"`
	Driving     *DriverStatus  `json:"driving,omitempty"` // the driver's last heartbeat
	Advice      string         `json:"advice,omitempty"`  // what to do next
}

// StatusOf is the rollout of v's group now.
func StatusOf(v fleet.View) Status {
	st := Status{Time: v.Time.UTC(), Group: v.Group, State: StateNone, Summary: "no rollout (start one with inferops rollout start --to VERSION)"}
	rv := v.Rollout
	if rv == nil || rv.Rollout == nil {
		return st
	}
	r := rv.Rollout
	st.Rollout, st.State, st.StepPercent = r, r.Phase, r.Share
	st.HoldSeconds = r.Plan.Hold().Seconds()
	st.StepSeconds = v.Time.Sub(r.StepAt).Seconds()
	if r.Step >= 0 {
		st.StepOf = fmt.Sprintf("%d/%d", r.Step+1, len(r.Plan.Steps))
	}
	st.Driver, st.Instances, st.Pending = r.Driver, rv.Instances, rv.Pending
	if b := rv.Driver; b != nil && b.ID == r.ID {
		st.DriverAge = rv.DriverAge.Seconds()
		var ds DriverStatus
		if json.Unmarshal(b.Status, &ds) == nil {
			st.Driving = &ds
		}
	}
	st.DriverAlive = r.Active() && !rv.DriverLost()
	cmp := Compare(rv, nil)
	if r.Active() {
		st.Comparison = &cmp
	}
	switch {
	case r.Active() && rv.DriverLost():
		st.State = StateHolding
		st.Gates, st.GatesBy = Evaluate(r.Plan, rv.Candidate, rv.Baseline), "this process"
		age := "never heard"
		if rv.Driver != nil && rv.Driver.ID == r.ID {
			age = fmt.Sprintf("last heard %.0f s ago", rv.DriverAge.Seconds())
		}
		st.Summary = fmt.Sprintf("rollout %s to %s HOLDING at %.4g%%: its driver (%s) is lost (%s); nothing advances until it is resumed", r.ID, r.Candidate, r.Share, r.Driver, age)
		st.Advice = "inferops rollout resume (continue the plan from this step here) or inferops rollout abort (everything back to " + r.Baseline + ")"
	case r.Active():
		if st.Driving != nil {
			st.Gates, st.GatesBy = st.Driving.Gates, "driver"
		}
		what := fmt.Sprintf("step %s, %.4g%% to %s", st.StepOf, r.Share, r.Candidate)
		if r.Phase == fleet.RolloutWarming {
			what = "warming " + r.Candidate + " up"
		}
		st.Summary = fmt.Sprintf("rollout %s %s -> %s: %s, driven by %s", r.ID, r.Baseline, r.Candidate, what, r.Driver)
		if st.Driving != nil && st.Driving.Message != "" {
			st.Summary += ": " + st.Driving.Message
		}
		st.Advice = "inferops rollout promote (skip the remaining steps) or inferops rollout abort"
	case r.Phase == fleet.RolloutPromoted:
		st.Summary = fmt.Sprintf("rollout %s promoted %s (was %s)", r.ID, r.Candidate, r.Baseline)
	default:
		st.Summary = fmt.Sprintf("rollout %s of %s %s at %.4g%%: %s; every record back to %s", r.ID, r.Candidate, strings.ReplaceAll(r.Phase, "_", " "), lastShare(r), r.Reason, r.Baseline)
	}
	if r.Shadow > 0 && r.Active() {
		st.Summary += fmt.Sprintf(" (shadow %.4g%%)", r.Shadow)
	}
	return st
}

// lastShare is the share a rollout had when it ended.
func lastShare(r *fleet.Rollout) float64 {
	if r.Step >= 0 && r.Step < len(r.Plan.Steps) {
		return r.Plan.Steps[r.Step]
	}
	return 0
}

// Print writes s for people.
func (s Status) Print(w io.Writer) {
	fmt.Fprintf(w, "%s\n", s.Summary)
	if s.Rollout == nil {
		return
	}
	r := s.Rollout
	fmt.Fprintf(w, "plan      %s, hold %s each, shadow %.4g%%; started %s by %s\n", stepsString(r.Plan.Steps, r.Step), r.Plan.Hold(), r.Shadow, r.Started.Format(time.RFC3339), r.Driver)
	if r.Active() {
		fmt.Fprintf(w, "step      %.0f s of %.0f s held", s.StepSeconds, s.HoldSeconds)
		if s.Driving != nil && s.Driving.PassingFor > 0 {
			fmt.Fprintf(w, ", every gate passing for %.0f s", s.Driving.PassingFor)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "instances %d at the step", len(s.Instances))
		if len(s.Pending) > 0 {
			fmt.Fprintf(w, "; not yet: %s", strings.Join(s.Pending, ", "))
		}
		fmt.Fprintln(w)
	}
	if s.Driving != nil && s.Driving.Warmup != nil {
		fmt.Fprintf(w, "warm-up   %s\n", s.Driving.Warmup)
	}
	if len(s.Gates) > 0 {
		fmt.Fprintf(w, "\ngates (judged by %s)\n", s.GatesBy)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, g := range s.Gates {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", g.Name, strings.ToUpper(g.State), g.Value, g.Limit, g.Detail)
		}
		_ = tw.Flush()
	}
	if c := s.Comparison; c != nil {
		fmt.Fprintf(w, "\ncomparison (last %d s, merged over %d instances)\n", windowSeconds, len(s.Instances))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  \tversion\trows/s\tpredict p50/p95/p99 ms\te2e p99 ms\terrors\tdlq\n")
		sides := []struct {
			name string
			s    *SideSummary
		}{{"baseline", &c.Baseline}, {"candidate", &c.Candidate}, {"shadow", c.Shadow}}
		for _, sd := range sides {
			if sd.s == nil {
				continue
			}
			fmt.Fprintf(tw, "  %s %s\tv%d\t%.1f\t%.1f/%.1f/%.1f\t%.1f\t%s\t%s\n", sd.name, sd.s.Target, sd.s.Version, sd.s.RowRate,
				sd.s.Predict.P50ms, sd.s.Predict.P95ms, sd.s.Predict.P99ms, sd.s.EndToEnd.P99ms, ratio(sd.s.ErrorRate), ratio(sd.s.DLQRate))
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "\noutputs\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  \toutput\tn\tmean\tp50\tp90\tp99\tPSI\t|diff| max/mean\n")
		for _, sd := range sides {
			if sd.s == nil {
				continue
			}
			for _, o := range sd.s.Outputs {
				diff := ""
				if o.MaxAbsDiff != nil {
					diff = fmt.Sprintf("%.4g/%.4g", *o.MaxAbsDiff, *o.MeanAbsDiff)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%.4g\t%.4g\t%.4g\t%.4g\t%s\t%s\n", sd.name, o.Name, o.N, o.Mean, o.P50, o.P90, o.P99, num(o.PSI, "%.3f"), diff)
			}
		}
		_ = tw.Flush()
	}
	if s.Advice != "" {
		fmt.Fprintf(w, "\nnext: %s\n", s.Advice)
	}
}

func stepsString(steps []float64, at int) string {
	parts := make([]string, len(steps))
	for i, p := range steps {
		parts[i] = fmt.Sprintf("%.4g%%", p)
		if i == at {
			parts[i] = "[" + parts[i] + "]"
		}
	}
	return strings.Join(parts, " -> ")
}

func ratio(p *float64) string {
	if p == nil {
		return "-"
	}
	return pct(*p)
}

func num(p *float64, f string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(f, *p)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
