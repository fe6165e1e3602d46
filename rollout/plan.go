package rollout

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/fleet"
)

// Defaults an SRE would accept for a production rollout; every one is a
// flag of `inferops rollout start`.
const (
	DefaultSteps            = "1,10,50,100"
	DefaultHold             = 5 * time.Minute
	DefaultSLO              = 100 * time.Millisecond // the seed's 500-stream SLO
	DefaultLatencyTolerance = 0.25                   // candidate p99 at most 25% over the baseline's...
	DefaultLatencySlack     = 10 * time.Millisecond  // ...plus 10 ms, so a 2 ms model is not judged on noise
	DefaultMaxErrorIncrease = 0.01                   // one point more failed Predicts (or rejected rows) than the baseline
	DefaultMaxPSI           = 0.2                    // below "significant shift" (0.25)
	DefaultMinSamples       = 200                    // candidate rows in the window before latency or PSI is judged
	DefaultWarmup           = 100                    // recent input records sent to the candidate first
)

// Options are a rollout's plan as flags spell it.
type Options struct {
	Steps            string // "1,10,50,100" (percent; the last is 100)
	Hold             time.Duration
	Shadow           float64 // percent of the baseline's records mirrored to the candidate
	SLO              time.Duration
	LatencyTolerance float64 // fraction
	LatencySlack     time.Duration
	MaxErrorIncrease float64 // fraction
	MaxPSI           float64
	MinSamples       int
	Warmup           int
	// ShadowOnly: no record is served by the candidate; Shadow of the
	// baseline's records are compared until promote or abort.
	ShadowOnly bool
}

// DefaultOptions are the defaults above.
func DefaultOptions() Options {
	return Options{Steps: DefaultSteps, Hold: DefaultHold, SLO: DefaultSLO, LatencyTolerance: DefaultLatencyTolerance,
		LatencySlack: DefaultLatencySlack, MaxErrorIncrease: DefaultMaxErrorIncrease, MaxPSI: DefaultMaxPSI,
		MinSamples: DefaultMinSamples, Warmup: DefaultWarmup}
}

// Validate checks the options (Plan's errors, naming the flags).
func (o Options) Validate() error {
	_, err := o.Plan()
	return err
}

// Plan checks the options and returns the plan the desired state carries.
func (o Options) Plan() (fleet.RolloutPlan, error) {
	steps, err := ParseSteps(o.Steps)
	var errs []error
	switch {
	case o.ShadowOnly:
		steps = []float64{0}
		if !(o.Shadow > 0) {
			errs = append(errs, fmt.Errorf("--shadow-only needs --shadow PCT > 0 (the share of records to mirror)"))
		}
	case err != nil:
		errs = append(errs, err)
	}
	if o.Hold < time.Second || o.Hold > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--hold %v: want 1s..24h (how long each step is watched before it advances)", o.Hold))
	}
	if !(o.Shadow >= 0 && o.Shadow <= 100) {
		errs = append(errs, fmt.Errorf("--shadow %v: want a percentage 0..100", o.Shadow))
	}
	if o.SLO <= 0 {
		errs = append(errs, fmt.Errorf("--slo %v: want a positive duration (the candidate's Predict p99 limit)", o.SLO))
	}
	if !(o.LatencyTolerance >= 0 && o.LatencyTolerance <= 100) {
		errs = append(errs, fmt.Errorf("--latency-tolerance %v: want a fraction over the baseline's p99, e.g. 0.25", o.LatencyTolerance))
	}
	if o.LatencySlack < 0 {
		errs = append(errs, fmt.Errorf("--latency-slack %v: want >= 0", o.LatencySlack))
	}
	if !(o.MaxErrorIncrease >= 0 && o.MaxErrorIncrease <= 1) {
		errs = append(errs, fmt.Errorf("--max-error-increase %v: want a fraction 0..1, e.g. 0.01 for one point", o.MaxErrorIncrease))
	}
	if !(o.MaxPSI > 0) || o.MaxPSI > 100 {
		errs = append(errs, fmt.Errorf("--max-psi %v: want > 0 (0.1 no shift, 0.25 significant)", o.MaxPSI))
	}
	if o.MinSamples < 1 || o.MinSamples > 10_000_000 {
		errs = append(errs, fmt.Errorf("--min-samples %d: want 1..10000000", o.MinSamples))
	}
	if o.Warmup < 0 || o.Warmup > 100_000 {
		errs = append(errs, fmt.Errorf("--warmup %d: want 0..100000 records (0 skips the warm-up)", o.Warmup))
	}
	if err := errors.Join(errs...); err != nil {
		return fleet.RolloutPlan{}, err
	}
	return fleet.RolloutPlan{Steps: steps, HoldMs: o.Hold.Milliseconds(), SLOMs: ms(o.SLO), LatencyTolerance: o.LatencyTolerance,
		LatencySlackMs: ms(o.LatencySlack), MaxErrorIncrease: o.MaxErrorIncrease, MaxPSI: o.MaxPSI, MinSamples: o.MinSamples, Warmup: o.Warmup}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ParseSteps reads "1,10,50,100": ascending percentages, the last 100.
func ParseSteps(s string) ([]float64, error) {
	bad := func(why string) error {
		return fmt.Errorf("--steps %q: %s (want ascending percentages ending at 100, e.g. %s)", s, why, DefaultSteps)
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		if f == "" {
			return nil, bad("empty step")
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0 && v <= 100) {
			return nil, bad(fmt.Sprintf("%q is not a percentage in (0, 100]", f))
		}
		if len(out) > 0 && v <= out[len(out)-1] {
			return nil, bad("steps must grow")
		}
		out = append(out, v)
	}
	if len(out) > 100 {
		return nil, bad("more than 100 steps")
	}
	if out[len(out)-1] != 100 {
		return nil, bad("the last step must be 100")
	}
	return out, nil
}
