package rollout

import (
	"fmt"
	"math"
	"strings"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// Gate states.
const (
	GatePass   = "pass"
	GateBreach = "breach"
	GateWait   = "wait" // not enough evidence yet: never advances, never rolls back
)

// Gate names.
const (
	GateLatency = "latency"
	GateErrors  = "errors"
	GatePSI     = "psi"
	GateWarmup  = "warmup"
)

// Gate is one check of the candidate against its limit.
type Gate struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Value  string `json:"value"`
	Limit  string `json:"limit"`
	Detail string `json:"detail,omitempty"` // why it waits, or what breached
}

func (g Gate) String() string {
	s := fmt.Sprintf("%s %s: %s (limit %s)", g.Name, g.State, g.Value, g.Limit)
	if g.Detail != "" {
		s += ": " + g.Detail
	}
	return s
}

// PSI on a few dozen values is mostly sampling noise, which is also
// skewed upward: the gate needs psiMinValues on each side (or MinSamples
// if larger), and allows twice the noise's expectation (about its mean
// plus two standard deviations for ten groups) on top of MaxPSI, because
// it looks every second and one noisy look must not roll back a sound
// model.
const (
	psiMinValues   = 200
	psiNoiseFactor = 2
)

// minCalls is the Predicts of the candidate before its error rate is
// judged: fewer say little, and at a 1% step calls come slowly.
const minCalls = 20

// Evaluate judges the candidate against the plan's gates. ref is the
// baseline to compare with: the current one when it has enough rows, else
// the last one that had (at 100% the baseline serves nothing). A gate
// without enough evidence waits.
func Evaluate(p fleet.RolloutPlan, cand, ref fleet.Side) []Gate {
	return []Gate{latencyGate(p, cand, ref), errorGate(p, cand, ref), psiGate(p, cand, ref)}
}

func msOf(h fleet.Hist) float64 { return float64(h.Quantile(99).Microseconds()) / 1000 }

func latencyGate(p fleet.RolloutPlan, cand, ref fleet.Side) Gate {
	g := Gate{Name: GateLatency, State: GateWait, Limit: fmt.Sprintf("<= SLO %s", fmtMs(p.SLOMs))}
	n := cand.Predict.Count()
	if int(n) < p.MinSamples {
		g.Value = fmt.Sprintf("p99 %s", fmtMs(msOf(cand.Predict)))
		g.Detail = fmt.Sprintf("%d of %d candidate rows in the window", n, p.MinSamples)
		if n > 0 && int(n)*3 < p.MinSamples {
			g.Detail += " (light traffic for this share: a larger first step or a lower --min-samples lets it be judged)"
		}
		if n == 0 {
			g.Value = "p99 -"
		}
		return g
	}
	limit := p.SLOMs
	c := msOf(cand.Predict)
	g.Value = fmt.Sprintf("p99 %s", fmtMs(c))
	if int(ref.Predict.Count()) >= p.MinSamples {
		b := msOf(ref.Predict)
		rel := b*(1+p.LatencyTolerance) + p.LatencySlackMs
		if rel < limit {
			limit = rel
		}
		g.Limit = fmt.Sprintf("<= %s (SLO %s; baseline p99 %s +%.0f%% +%s)", fmtMs(limit), fmtMs(p.SLOMs), fmtMs(b), p.LatencyTolerance*100, fmtMs(p.LatencySlackMs))
	} else {
		g.Detail = "no baseline latency yet: judged against the SLO alone"
	}
	g.State = GatePass
	if c > limit {
		g.State = GateBreach
		g.Detail = fmt.Sprintf("candidate Predict p99 %s is over %s", fmtMs(c), fmtMs(limit))
	}
	return g
}

func errorGate(p fleet.RolloutPlan, cand, ref fleet.Side) Gate {
	g := Gate{Name: GateErrors, State: GateWait, Limit: fmt.Sprintf("<= baseline +%s", pct(p.MaxErrorIncrease))}
	cr, ok := cand.ErrorRate()
	if !ok || cand.Calls < minCalls {
		g.Value = fmt.Sprintf("%d/%d Predicts failed", cand.Errors, cand.Calls)
		g.Detail = fmt.Sprintf("%d of %d candidate Predicts in the window", cand.Calls, minCalls)
		return g
	}
	br, _ := ref.ErrorRate()
	cd, bd := rowRate(cand.DLQ, cand.Rows+cand.DLQ), rowRate(ref.DLQ, ref.Rows+ref.DLQ)
	g.Value = fmt.Sprintf("%s of Predicts failed, %s of rows rejected", pct(cr), pct(cd))
	g.Limit = fmt.Sprintf("<= %s failed, %s rejected (baseline %s, %s, +%s)", pct(br+p.MaxErrorIncrease), pct(bd+p.MaxErrorIncrease), pct(br), pct(bd), pct(p.MaxErrorIncrease))
	g.State = GatePass
	switch {
	case cr > br+p.MaxErrorIncrease:
		g.State = GateBreach
		g.Detail = fmt.Sprintf("candidate Predicts fail at %s (%d of %d), baseline %s", pct(cr), cand.Errors, cand.Calls, pct(br))
	case cd > bd+p.MaxErrorIncrease:
		g.State = GateBreach
		g.Detail = fmt.Sprintf("the candidate rejects %s of rows (%d dead-lettered), baseline %s", pct(cd), cand.DLQ, pct(bd))
	}
	return g
}

func rowRate(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func psiGate(p fleet.RolloutPlan, cand, ref fleet.Side) Gate {
	g := Gate{Name: GatePSI, State: GateWait, Limit: fmt.Sprintf("< %.2f", p.MaxPSI), Value: "-"}
	// Each output is judged against the limit plus the PSI its sample
	// sizes show from noise alone (pipeline.PSINoise), so a small window
	// is not a shift; the worst is the one furthest over (or nearest).
	worst, worstName, worstNoise, worstExcess, judged := 0.0, "", 0.0, math.Inf(-1), 0
	var waiting []string
	need := max(p.MinSamples, psiMinValues)
	for _, name := range sortedKeys(cand.Outputs) {
		c, b := cand.Outputs[name], ref.Outputs[name]
		if int(c.N) < need || int(b.N) < need {
			waiting = append(waiting, fmt.Sprintf("%s %d/%d candidate, %d/%d baseline values", name, c.N, need, b.N, need))
			continue
		}
		v, groups, ok := pipeline.PSIGroups(b, c)
		if !ok {
			continue
		}
		judged++
		noise := psiNoiseFactor * pipeline.PSINoise(groups, b.N, c.N)
		if ex := v - noise - p.MaxPSI; ex > worstExcess {
			worst, worstName, worstNoise, worstExcess = v, name, noise, ex
		}
	}
	if judged == 0 {
		if len(cand.Outputs) == 0 {
			g.Detail = "no numeric output values from the candidate yet"
		} else {
			g.Detail = strings.Join(waiting, "; ")
		}
		return g
	}
	g.Value = fmt.Sprintf("%.3f (%s)", worst, worstName)
	g.Limit = fmt.Sprintf("< %.2f + %.3f sampling noise", p.MaxPSI, worstNoise)
	g.State = GatePass
	if worstExcess >= 0 {
		g.State = GateBreach
		g.Detail = fmt.Sprintf("output %s shifted: PSI %.3f against the baseline", worstName, worst)
	}
	if len(waiting) > 0 && g.State == GatePass {
		g.State = GateWait
		g.Detail = strings.Join(waiting, "; ")
	}
	return g
}

// Verdict folds gates: any breach is a breach (the first named), else
// any wait is a wait, else pass.
func Verdict(gs []Gate) (state string, why *Gate) {
	state = GatePass
	for i := range gs {
		switch gs[i].State {
		case GateBreach:
			return GateBreach, &gs[i]
		case GateWait:
			if state == GatePass {
				state, why = GateWait, &gs[i]
			}
		}
	}
	return state, why
}

func fmtMs(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }
