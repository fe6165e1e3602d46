package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
)

// Rollout phases.
const (
	// Active: instances split traffic.
	RolloutWarming = "warming" // the candidate gets warm-up requests; no record traffic yet
	RolloutCanary  = "canary"  // Share of records to the candidate
	// Ended: every record to the desired Target.
	RolloutPromoted   = "promoted"    // the candidate is the target
	RolloutRolledBack = "rolled_back" // a gate breached: back to the baseline
	RolloutAborted    = "aborted"     // an operator stopped it: back to the baseline
)

// RolloutSchema is the control schema that knows rollouts: an instance of
// an older inferops refuses a desired state with an active rollout (it
// cannot split) instead of sending every record to the baseline.
const RolloutSchema = 2

// Rollout is a gradual rollout in a group's desired state: which version
// replaces which, the plan, and where it stands. Only the driver (the
// process running `inferops rollout start|resume`, or a console that
// started one) advances it; instances apply Share and Shadow.
type Rollout struct {
	ID        string      `json:"id"`
	Baseline  string      `json:"baseline"`  // tfserving.Target spelling
	Candidate string      `json:"candidate"` // the same
	Phase     string      `json:"phase"`
	Step      int         `json:"step"`   // index into Plan.Steps; -1 before the first
	Share     float64     `json:"share"`  // percent of records to the candidate
	Shadow    float64     `json:"shadow"` // percent of the baseline's records mirrored to it
	Plan      RolloutPlan `json:"plan"`
	Driver    string      `json:"driver"` // who advances it: "user@host pid N"
	Started   time.Time   `json:"started"`
	StepAt    time.Time   `json:"step_at"`          // when the current step (or phase) began
	Reason    string      `json:"reason,omitempty"` // why it ended, or the last hold
}

// RolloutPlan is a rollout's steps and gates, kept in the desired state so
// any process can resume it.
type RolloutPlan struct {
	Steps  []float64 `json:"steps"` // percent of records, ascending, the last 100
	HoldMs int64     `json:"hold_ms"`
	// Gates: a step advances only when the candidate's Predict p99 is within
	// SLOMs and within LatencyTolerance (a fraction) plus LatencySlackMs of
	// the baseline's, its error rate at most MaxErrorIncrease (a fraction)
	// above the baseline's, and every numeric output's PSI below MaxPSI;
	// none is judged before MinSamples candidate rows are in the window.
	SLOMs            float64 `json:"slo_ms"`
	LatencyTolerance float64 `json:"latency_tolerance"`
	LatencySlackMs   float64 `json:"latency_slack_ms"`
	MaxErrorIncrease float64 `json:"max_error_increase"`
	MaxPSI           float64 `json:"max_psi"`
	MinSamples       int     `json:"min_samples"`
	Warmup           int     `json:"warmup"` // input records sent to the candidate before any traffic
}

// ShadowOnly reports a plan of one step at 0%: the candidate only
// shadows, held until an operator promotes or aborts it.
func (p RolloutPlan) ShadowOnly() bool { return len(p.Steps) == 1 && p.Steps[0] == 0 }

// Hold is the plan's hold per step.
func (p RolloutPlan) Hold() time.Duration { return time.Duration(p.HoldMs) * time.Millisecond }

// Active reports whether instances split traffic for r.
func (r *Rollout) Active() bool {
	return r != nil && (r.Phase == RolloutWarming || r.Phase == RolloutCanary)
}

// Validate checks a rollout before it is written or applied.
func (r *Rollout) Validate() error {
	var errs []error
	if r.ID == "" {
		errs = append(errs, errors.New("rollout has no id"))
	}
	b, err1 := tfserving.ParseTarget(r.Baseline)
	c, err2 := tfserving.ParseTarget(r.Candidate)
	errs = append(errs, err1, err2)
	if err1 == nil && err2 == nil && b == c {
		errs = append(errs, fmt.Errorf("rollout from %s to itself", r.Baseline))
	}
	switch r.Phase {
	case RolloutWarming, RolloutCanary, RolloutPromoted, RolloutRolledBack, RolloutAborted:
	default:
		errs = append(errs, fmt.Errorf("rollout phase %q unknown", r.Phase))
	}
	if !(r.Share >= 0 && r.Share <= 100) || !(r.Shadow >= 0 && r.Shadow <= 100) {
		errs = append(errs, fmt.Errorf("rollout share %v%%, shadow %v%%: want 0..100", r.Share, r.Shadow))
	}
	if len(r.Plan.Steps) == 0 || len(r.Plan.Steps) > 100 {
		errs = append(errs, fmt.Errorf("rollout plan has %d steps, want 1..100", len(r.Plan.Steps)))
	}
	for i, s := range r.Plan.Steps {
		if r.Plan.ShadowOnly() {
			break
		}
		if !(s > 0 && s <= 100) || (i > 0 && s <= r.Plan.Steps[i-1]) {
			errs = append(errs, fmt.Errorf("rollout steps %v: want ascending percentages in (0, 100]", r.Plan.Steps))
			break
		}
	}
	if r.Step < -1 || r.Step >= len(r.Plan.Steps) {
		errs = append(errs, fmt.Errorf("rollout step %d of %d", r.Step, len(r.Plan.Steps)))
	}
	return errors.Join(errs...)
}

// Applied is the share and shadow (percent) instances apply in r's phase:
// during the warm-up every record is mirrored and none served.
func (r *Rollout) Applied() (share, shadow float64) {
	if r.Phase == RolloutWarming {
		return 0, 100
	}
	return r.Share, r.Shadow
}

// Split is what an instance applies for r (nil when r is not active).
func (r *Rollout) Split() (*worker.Split, error) {
	if !r.Active() {
		return nil, nil
	}
	b, err := tfserving.ParseTarget(r.Baseline)
	if err != nil {
		return nil, err
	}
	c, err := tfserving.ParseTarget(r.Candidate)
	if err != nil {
		return nil, err
	}
	// During the warm-up every instance mirrors its records to the
	// candidate (within the shadow's in-flight bound) before it serves any.
	share, shadow := r.Applied()
	return &worker.Split{ID: r.ID, Baseline: b, Candidate: c, Share: share / 100, Shadow: shadow / 100}, nil
}

func (r *Rollout) clone() *Rollout {
	if r == nil {
		return nil
	}
	c := *r
	c.Plan.Steps = slices.Clone(r.Plan.Steps)
	return &c
}

// Side is one side of a rollout as a snapshot carries it (the worker's
// SideStats over its 10 s window).
type Side struct {
	Target   string                   `json:"target"`
	Version  int64                    `json:"version,omitempty"`
	Rows     uint64                   `json:"rows"`
	Calls    uint64                   `json:"calls"`
	Errors   uint64                   `json:"errors,omitempty"`
	DLQ      uint64                   `json:"dlq,omitempty"`
	Skipped  uint64                   `json:"skipped,omitempty"`
	FirstMs  float64                  `json:"first_ms,omitempty"` // its first Predict (the largest over instances when merged)
	Predict  Hist                     `json:"predict"`
	EndToEnd Hist                     `json:"e2e"`
	Outputs  map[string]pipeline.Dist `json:"outputs,omitempty"`
	Diff     map[string]DiffStat      `json:"diff,omitempty"`
}

// DiffStat is |candidate - baseline| over a shadow's compared elements.
type DiffStat struct {
	N   uint64  `json:"n"`
	Max float64 `json:"max"`
	Sum float64 `json:"sum"`
}

// Mean is the mean absolute difference.
func (d DiffStat) Mean() float64 {
	if d.N == 0 {
		return 0
	}
	return d.Sum / float64(d.N)
}

// RolloutSnap is an instance's part of a rollout.
type RolloutSnap struct {
	ID        string  `json:"id"`
	Share     float64 `json:"share"`  // percent applied
	Shadow    float64 `json:"shadow"` // percent applied
	Baseline  Side    `json:"baseline"`
	Candidate Side    `json:"candidate"`
	Shadowed  *Side   `json:"shadowed,omitempty"`
}

func sideOf(s worker.SideStats) Side {
	out := Side{Target: s.Target, Version: s.Version, Rows: s.Rows, Calls: s.Calls, Errors: s.Errors, DLQ: s.DLQ, Skipped: s.Skipped,
		FirstMs: float64(s.First.Microseconds()) / 1000,
		Predict: HistOf(s.Predict.Hist), EndToEnd: HistOf(s.EndToEnd.Hist), Outputs: s.Outputs}
	for name, d := range s.Diff {
		if out.Diff == nil {
			out.Diff = map[string]DiffStat{}
		}
		out.Diff[name] = DiffStat{N: d.N, Max: d.Max, Sum: d.Sum}
	}
	return out
}

func rolloutSnapOf(r *worker.RolloutStats) *RolloutSnap {
	if r == nil {
		return nil
	}
	s := &RolloutSnap{ID: r.ID, Share: round4(r.Share * 100), Shadow: round4(r.Shadow * 100), Baseline: sideOf(r.Baseline), Candidate: sideOf(r.Candidate)}
	if r.Shadowed != nil {
		sh := sideOf(*r.Shadowed)
		s.Shadowed = &sh
	}
	return s
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// merge adds o to s: counts add, histograms and distributions merge
// exactly, the largest difference is the largest of both.
func (s *Side) merge(o Side) {
	if s.Target == "" {
		s.Target = o.Target
	}
	s.Version = max(s.Version, o.Version)
	s.Rows += o.Rows
	s.Calls += o.Calls
	s.Errors += o.Errors
	s.DLQ += o.DLQ
	s.Skipped += o.Skipped
	s.FirstMs = max(s.FirstMs, o.FirstMs)
	s.Predict = Merge(s.Predict, o.Predict)
	s.EndToEnd = Merge(s.EndToEnd, o.EndToEnd)
	for name, d := range o.Outputs {
		if s.Outputs == nil {
			s.Outputs = map[string]pipeline.Dist{}
		}
		m := s.Outputs[name].Clone()
		m.Merge(d)
		s.Outputs[name] = m
	}
	for name, d := range o.Diff {
		if s.Diff == nil {
			s.Diff = map[string]DiffStat{}
		}
		m := s.Diff[name]
		m.N += d.N
		m.Sum += d.Sum
		m.Max = max(m.Max, d.Max)
		s.Diff[name] = m
	}
}

// ErrorRate is failed Predicts over Predicts (ok false without calls).
func (s Side) ErrorRate() (float64, bool) {
	if s.Calls == 0 {
		return 0, false
	}
	return float64(s.Errors) / float64(s.Calls), true
}

// RolloutView is a rollout over the fleet: the desired rollout and the
// live instances' sides merged, for the rollout in effect.
type RolloutView struct {
	*Rollout                // as desired (nil when the group has none)
	Instances []string      // live instances applying it at its share
	Pending   []string      // live following instances not (yet) at its share: "name (at 10%)"
	Baseline  Side          // merged over Instances
	Candidate Side          // merged over Instances
	Shadowed  *Side         // merged, when shadowing
	Driver    *DriverBeat   // the driver's latest heartbeat, nil when none was heard
	DriverAge time.Duration // since that heartbeat
	sinceStep time.Duration // since the rollout's step (or phase) began
}

// DriverLost reports whether an active rollout's driver has stopped
// beating (three beats): the rollout holds its step until someone
// resumes or aborts it.
func (v *RolloutView) DriverLost() bool {
	if v == nil || !v.Rollout.Active() {
		return false
	}
	if v.Driver == nil || v.Driver.ID != v.ID {
		// A driver that just started (or resumed) has not beaten yet.
		return v.sinceStep > 3*DriverBeatInterval
	}
	return v.DriverAge > 3*DriverBeatInterval
}

// rolloutView merges the live instances' rollout sides.
func rolloutView(v *View, beat *DriverBeat) *RolloutView {
	var r *Rollout
	if v.Desired != nil {
		r = v.Desired.Rollout
	}
	if r == nil && beat == nil {
		return nil
	}
	rv := &RolloutView{Rollout: r, Driver: beat}
	if beat != nil {
		rv.DriverAge = v.Time.Sub(beat.Time)
	}
	if r == nil {
		return rv
	}
	rv.sinceStep = v.Time.Sub(r.StepAt)
	share, shadow := r.Applied()
	for _, i := range v.Instances {
		if !i.Live() || i.Control.Mode != ModeFollow {
			continue
		}
		s := i.Rollout
		switch {
		case r.Active() && (s == nil || s.ID != r.ID || math.Abs(s.Share-share) > 1e-6 || math.Abs(s.Shadow-shadow) > 1e-6):
			at := "no split"
			if s != nil {
				at = fmt.Sprintf("at %.4g%%", s.Share)
			}
			rv.Pending = append(rv.Pending, fmt.Sprintf("%s (%s)", i.Instance, at))
		case s != nil && s.ID == r.ID:
			rv.Instances = append(rv.Instances, i.Instance)
			rv.Baseline.merge(s.Baseline)
			rv.Candidate.merge(s.Candidate)
			if s.Shadowed != nil {
				if rv.Shadowed == nil {
					rv.Shadowed = &Side{}
				}
				rv.Shadowed.merge(*s.Shadowed)
			}
		}
	}
	return rv
}

// rolloutPrefix keys a group's driver heartbeat on the fleet topic.
const rolloutPrefix = "rollout/"

// DriverBeatInterval is how often a rollout's driver says it is alive.
const DriverBeatInterval = time.Second

// DriverBeat is a rollout driver's heartbeat on the fleet topic (key
// rollout/<group>): who drives, and what it last decided, as the
// rollout package's status (opaque here).
type DriverBeat struct {
	Group  string          `json:"group"`
	ID     string          `json:"id"` // the rollout
	Driver string          `json:"driver"`
	Time   time.Time       `json:"time"`
	Status json.RawMessage `json:"status,omitempty"`
}

// DecodeDriverBeat reads a heartbeat record.
func DecodeDriverBeat(b []byte) (*DriverBeat, error) {
	if len(b) > MaxRecordBytes {
		return nil, errors.New("rollout heartbeat too large")
	}
	var d DriverBeat
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("rollout heartbeat: %w", err)
	}
	if d.Group == "" || d.ID == "" || d.Time.IsZero() {
		return nil, errors.New("rollout heartbeat without group, id or time")
	}
	return &d, nil
}

// Beat publishes a driver heartbeat for this controller's group.
func (c *Controller) Beat(ctx context.Context, b DriverBeat) error {
	if err := c.writable(); err != nil {
		return err
	}
	if c.cfg.DryRun {
		return nil
	}
	b.Group = c.cfg.Group
	if b.Time.IsZero() {
		b.Time = time.Now()
	}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	v = config.ScrubJSON(v)
	return c.send(ctx, &sarama.ProducerMessage{Topic: c.cfg.Topics.Fleet, Key: sarama.StringEncoder(rolloutPrefix + c.cfg.Group), Value: sarama.ByteEncoder(v), Timestamp: b.Time})
}

// UpdateRollout writes the group's desired state with its rollout as fn
// changes it (fn gets a copy of the current one, nil when none; it
// returns the new one and what changed, e.g. "rollout r-1: step 2, 10%").
// The desired target follows: the baseline while the rollout is active
// or ended without promotion, the candidate once promoted. A desired state
// with an active rollout needs control schema 2 (Compat), so an older
// instance refuses it rather than ignoring the split.
func (c *Controller) UpdateRollout(ctx context.Context, fn func(cur *Rollout) (*Rollout, string, error)) (Change, error) {
	return c.update(ctx, func(d *Desired, _ int) (string, string, error) {
		r, desc, err := fn(d.Rollout.clone())
		if err != nil {
			return "", "", err
		}
		if r != nil {
			if err := r.Validate(); err != nil {
				return "", "", err
			}
			switch r.Phase {
			case RolloutPromoted:
				d.Target = r.Candidate
			default:
				d.Target = r.Baseline
			}
		}
		d.Rollout = r
		return desc, "", nil
	})
}

// Outputs is the sorted names of the outputs either side has values for.
func (v *RolloutView) Outputs() []string {
	names := map[string]bool{}
	for _, s := range []*Side{&v.Baseline, &v.Candidate, v.Shadowed} {
		if s == nil {
			continue
		}
		for n := range s.Outputs {
			names[n] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}
