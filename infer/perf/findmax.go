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
}

// findMax searches the rate with short runs: from the scenario's rate it
// doubles while runs pass or drops while they fail (to 90% of the throughput
// the failed run actually achieved, when that is lower than half), then
// bisects geometrically between the highest pass and the lowest failure
// until they are within 10% or the step budget is spent. Every step starts with a warm-up, so backlog
// left by a failed step is served before the next one is timed.
func (r *Run) findMax(p *pipeline) (*Result, error) {
	sc := r.opts.Scenario
	sc.Duration = r.opts.FindMaxStepDuration
	var (
		fm       FindMax
		lo, hi   float64 // highest pass, lowest failure (0 = none yet)
		best     *Result
		last     *Result
		rate     = sc.Rate
		maxSteps = r.opts.FindMaxSteps
	)
	for step := 1; step <= maxSteps; step++ {
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
		fm.Steps = append(fm.Steps, FindMaxStep{Rate: rate, SendRate: res.SendRate, TFQPS: res.TFQPS, P99: res.Latency.P99, Lost: res.Lost, Pass: res.Pass})
		if res.Pass {
			lo, best = rate, res
		} else {
			hi = rate
		}
		var next float64
		switch {
		case hi == 0:
			next = lo * 2
		case lo == 0:
			next = hi / 2
			if q := 0.9 * res.TFQPS; q > 0 && q < next {
				next = q // the pipeline told us roughly what it can absorb
			}
		default:
			if hi/lo < 1.1 {
				step = maxSteps // converged
				continue
			}
			next = math.Sqrt(lo * hi) // rates span decades: halve the ratio, not the gap
		}
		next = math.Round(next)
		if next < 1 || next == rate {
			break
		}
		rate = next
	}
	if last == nil {
		return nil, fmt.Errorf("perf --find-max cancelled before its first step finished")
	}
	fm.MaxRate = lo
	out := last
	if best != nil {
		out = best
	}
	cp := *out
	cp.RunID = r.runID
	cp.FindMax = &fm
	return &cp, nil
}
