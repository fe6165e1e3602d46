package perf

import (
	"fmt"
	"math"
)

// FindMax is the outcome of a --find-max search.
type FindMax struct {
	// MaxRate is the highest target rate whose run met the SLO with nothing
	// lost; 0 when no step passed.
	MaxRate float64       `json:"max_rate"`
	Steps   []FindMaxStep `json:"steps"`
}

// FindMaxStep is one short run of the search.
type FindMaxStep struct {
	Rate     float64 `json:"target_rate"`
	SendRate float64 `json:"send_msgs_per_sec"`
	TFQPS    float64 `json:"tf_qps"`
	P99      float64 `json:"p99_ms"`
	Lost     uint64  `json:"lost"`
	Pass     bool    `json:"pass"`
	// Repeat marks the second run of a failed rate above a known pass.
	Repeat bool `json:"repeat,omitempty"`
}

// findMax runs the search's steps as short loads. Every step starts with a
// warm-up, so backlog left by a failed step is served before the next one is
// timed.
func (r *Run) findMax(p *rig) (*Result, error) {
	sc := r.opts.Scenario
	sc.Duration = r.opts.FindMaxStepDuration
	var (
		fm   FindMax
		srch search
		best *Result
		last *Result
		rate = sc.Rate
	)
	for step := 1; step <= r.opts.FindMaxSteps; step++ {
		if err := r.ctx.Err(); err != nil {
			break
		}
		r.step.Store(int32(step))
		s := sc
		s.Rate = rate
		res, err := r.runLoad(p, s, fmt.Sprintf("%ss%d", r.runID, step))
		if err != nil {
			if last != nil {
				break // cancelled mid-search: report what was found
			}
			return nil, err
		}
		last = res
		if res.Pass && (best == nil || rate > best.TargetRate) {
			best = res
		}
		fm.Steps = append(fm.Steps, FindMaxStep{Rate: rate, SendRate: res.SendRate, TFQPS: res.TFQPS, P99: res.Latency.P99, Lost: res.Lost, Pass: res.Pass, Repeat: srch.retried})
		next, done := srch.observe(rate, res.Pass, res.TFQPS, r.opts.FindMaxSteps-step)
		if done {
			break
		}
		rate = next
	}
	if last == nil {
		return nil, fmt.Errorf("perf --find-max cancelled before its first step finished")
	}
	fm.MaxRate = srch.lo
	out := last
	if best != nil {
		out = best
	}
	cp := *out
	cp.RunID = r.runID
	cp.FindMax = &fm
	return &cp, nil
}

// search is --find-max's decision rule, apart from the runs so it can be
// tested on its own. From the scenario's rate it doubles while steps pass or
// drops while they fail (to 90% of what the failed step achieved, when that
// is below half), then bisects geometrically between the highest pass and
// the lowest failure until they are within 10% or the budget is spent. The
// first failure above a known pass is run once more before it counts: on a
// shared machine a burst of someone else's work fails a step the pipeline
// could take, while nothing makes a step pass that the pipeline cannot. (Only
// the first: repeating every failure would halve what the budget can search.)
type search struct {
	lo, hi   float64 // highest pass, lowest confirmed failure (0 = none yet)
	retried  bool    // the step just observed repeated the one before
	repeated bool    // the one repeat has been spent
}

// observe takes one step's outcome and returns the next rate, or done.
func (s *search) observe(rate float64, pass bool, achieved float64, stepsLeft int) (next float64, done bool) {
	if !pass && s.lo > 0 && !s.repeated && stepsLeft > 0 {
		s.repeated, s.retried = true, true
		return rate, false
	}
	s.retried = false
	if pass {
		s.lo = max(s.lo, rate)
	} else if s.hi == 0 || rate < s.hi {
		s.hi = rate
	}
	if stepsLeft <= 0 {
		return 0, true
	}
	switch {
	case s.hi == 0:
		next = s.lo * 2
	case s.lo == 0:
		next = s.hi / 2
		if q := 0.9 * achieved; q > 0 && q < next {
			next = q // the pipeline told us roughly what it can absorb
		}
	default:
		if s.hi/s.lo < 1.1 {
			return 0, true // converged
		}
		next = math.Sqrt(s.lo * s.hi) // rates span decades: halve the ratio, not the gap
	}
	next = math.Round(next)
	if next < 1 || next == rate {
		return 0, true
	}
	return next, false
}
