package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// DriverConfig is what a driver needs: the group's controller, and the
// TF Serving client to check that the candidate is loaded (nil skips the
// check).
type DriverConfig struct {
	Controller *fleet.Controller
	TFServing  *tfserving.Client
	Model      string // --model; default pipeline.DefaultModel
	Logger     *slog.Logger
	// Progress, when set, is called with the status after each decision.
	Progress func(Status)
	// Tick is how often gates are judged (default 1 s, the windows'
	// slice); tests do not change it.
	Tick time.Duration
}

// Driver advances one rollout step by step. It is the only writer of a
// rollout's steps; it never advances a step it has not watched for the
// whole hold with every gate passing at the end.
type Driver struct {
	cfg DriverConfig
	who string
	log *slog.Logger
}

// NewDriver prepares a driver under this process's name ("user@host pid N").
func NewDriver(cfg DriverConfig) *Driver {
	if cfg.Model == "" {
		cfg.Model = pipeline.DefaultModel
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	return &Driver{cfg: cfg, who: fmt.Sprintf("%s pid %d", fleet.Operator(), os.Getpid()), log: cfg.Logger}
}

// Who is the driver's name as the desired state records it.
func (d *Driver) Who() string { return d.who }

// Result is how a rollout ended for its driver.
type Result struct {
	ID     string `json:"id"`
	State  string `json:"state"` // promoted, rolled_back, aborted, holding (the driver stopped), replaced
	Reason string `json:"reason,omitempty"`
	Gate   *Gate  `json:"gate,omitempty"` // the gate that breached
}

// ErrInProgress is returned by Start when the group has an active rollout.
var ErrInProgress = errors.New("a rollout is in progress")

// Start begins a rollout of the group to the target `to` (a version,
// latest or label:NAME) with opts, and drives it until it is promoted,
// rolled back or aborted, or ctx ends (then the fleet holds its step and
// the result's state is "holding").
func (d *Driver) Start(ctx context.Context, to string, opts Options) (Result, error) {
	plan, err := opts.Plan()
	if err != nil {
		return Result{}, err
	}
	cand, err := tfserving.ParseTarget(to)
	if err != nil {
		return Result{}, fmt.Errorf("--to: %w", err)
	}
	c := d.cfg.Controller
	v := c.View()
	if rv := v.Rollout; rv != nil && rv.Rollout.Active() {
		return Result{}, fmt.Errorf("%w in group %s: %s to %s at %.4g%% (see inferops rollout status; resume or abort it first)", ErrInProgress, v.Group, rv.ID, rv.Rollout.Candidate, rv.Share)
	}
	base, err := baselineOf(v)
	if err != nil {
		return Result{}, err
	}
	if base == cand {
		return Result{}, fmt.Errorf("the fleet already serves %s: nothing to roll out", cand)
	}
	if err := d.checkLoaded(ctx, cand); err != nil {
		return Result{}, err
	}
	if base, err = d.resolve(ctx, base, cand); err != nil {
		return Result{}, err
	}
	now := time.Now().UTC()
	r := &fleet.Rollout{ID: "r" + now.Format("20060102-150405"), Baseline: base.String(), Candidate: cand.String(),
		Phase: fleet.RolloutWarming, Step: -1, Shadow: opts.Shadow, Plan: plan, Driver: d.who, Started: now, StepAt: now}
	if plan.Warmup == 0 {
		r.Phase, r.Step, r.Share = fleet.RolloutCanary, 0, plan.Steps[0]
	}
	ch, err := c.UpdateRollout(ctx, func(cur *fleet.Rollout) (*fleet.Rollout, string, error) {
		if cur.Active() {
			return nil, "", fmt.Errorf("%w: %s (started meanwhile by %s)", ErrInProgress, cur.ID, cur.Driver)
		}
		return r, fmt.Sprintf("rollout %s: %s -> %s, %s", r.ID, r.Baseline, r.Candidate, describe(r)), nil
	})
	if err != nil {
		return Result{}, err
	}
	d.log.Info("rollout started", "id", r.ID, "from", r.Baseline, "to", r.Candidate, "steps", plan.Steps, "hold", plan.Hold())
	if res, done := d.awaitApplied(ctx, ch, r.ID); done {
		return res, nil
	}
	return d.run(ctx, r.ID)
}

// describe is a rollout's step in words.
func describe(r *fleet.Rollout) string {
	switch {
	case r.Phase == fleet.RolloutWarming:
		return "warming up " + r.Candidate
	case r.Plan.ShadowOnly():
		return fmt.Sprintf("shadow %.4g%% only", r.Shadow)
	}
	return fmt.Sprintf("step %d/%d: %.4g%% of records to %s", r.Step+1, len(r.Plan.Steps), r.Share, r.Candidate)
}

// baselineOf is what the fleet serves now: the desired target, else the
// one target every live instance runs.
func baselineOf(v fleet.View) (tfserving.Target, error) {
	if v.Desired != nil && v.Desired.Target != "" {
		return tfserving.ParseTarget(v.Desired.Target)
	}
	var targets []string
	following := 0
	for _, i := range v.Instances {
		if !i.Live() || i.Control.Mode != fleet.ModeFollow {
			continue
		}
		following++
		if !slices.Contains(targets, i.Target) {
			targets = append(targets, i.Target)
		}
	}
	switch {
	case following == 0:
		return tfserving.Target{}, fmt.Errorf("no live instance of group %s follows control: start the workers first (a rollout is judged on their traffic; see inferops fleet status)", v.Group)
	case len(targets) > 1:
		return tfserving.Target{}, fmt.Errorf("the instances of %s serve different targets (%s): set one first with inferops fleet target VERSION", v.Group, strings.Join(targets, ", "))
	}
	return tfserving.ParseTarget(targets[0])
}

// resolve pins a baseline of "latest" to the version it is now (a version
// loaded during the rollout would otherwise become the baseline under it)
// and refuses a candidate that is the baseline under another name. Without
// a TF Serving client the targets are taken as given.
func (d *Driver) resolve(ctx context.Context, base, cand tfserving.Target) (tfserving.Target, error) {
	if d.cfg.TFServing == nil {
		return base, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	bm, err := d.cfg.TFServing.Metadata(cctx, d.cfg.Model, base)
	if err != nil {
		return base, fmt.Errorf("the fleet's target %s of %s: %w", base, d.cfg.Model, err)
	}
	cm, err := d.cfg.TFServing.Metadata(cctx, d.cfg.Model, cand)
	if err != nil {
		return base, fmt.Errorf("candidate %s of %s: %w", cand, d.cfg.Model, err)
	}
	if bm.Version == cm.Version {
		return base, fmt.Errorf("the fleet's target %s is version %d, and so is %s: nothing to roll out (roll out another version, or set the fleet's target first with inferops fleet target)", base, bm.Version, cand)
	}
	if base == (tfserving.Target{}) {
		base = tfserving.Target{Version: bm.Version}
	}
	return base, nil
}

// checkLoaded refuses a candidate version that some TF Serving host does
// not have AVAILABLE (a label is checked when used: the workers refuse a
// split whose candidate does not answer with their signature).
func (d *Driver) checkLoaded(ctx context.Context, cand tfserving.Target) error {
	if d.cfg.TFServing == nil || cand.Version == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f := d.cfg.TFServing.Probe(cctx)
	var missing []string
	for _, h := range f.Hosts {
		if !slices.Contains(h.Available(), cand.Version) {
			missing = append(missing, h.Addr)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("version %d of %s is not AVAILABLE on %s: load it there first (model_version_policy; inferops status shows what each host serves)", cand.Version, d.cfg.Model, strings.Join(missing, ", "))
	}
	return nil
}

// awaitApplied waits until every live following instance applied a
// change (30 s at most: a lost instance does not block the rollout). An
// instance that refuses the split (its candidate's signature differs)
// rolls the rollout back with that reason.
func (d *Driver) awaitApplied(ctx context.Context, ch fleet.Change, id string) (Result, bool) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ack, err := d.cfg.Controller.Wait(wctx, ch, nil)
	if len(ack.Failed) > 0 {
		reason := "instances refused the split: " + strings.Join(ack.Failed, "; ")
		res, rerr := d.end(context.WithoutCancel(ctx), id, fleet.RolloutRolledBack, reason, nil)
		if rerr != nil {
			d.log.Error("roll back", "err", rerr)
		}
		return res, true
	}
	if err != nil && ctx.Err() == nil {
		d.log.Warn("not every instance applied the rollout step yet", "err", err)
	}
	return Result{}, false
}

// Resume takes over the group's active rollout from here: it holds the
// current step for a whole hold again (what happened while nobody was
// watching is not counted), then follows the plan.
func (d *Driver) Resume(ctx context.Context) (Result, error) {
	c := d.cfg.Controller
	v := c.View()
	rv := v.Rollout
	if rv == nil || !rv.Rollout.Active() {
		return Result{}, fmt.Errorf("group %s has no rollout in progress (inferops rollout status)", v.Group)
	}
	if !rv.DriverLost() && rv.Driver.Driver != d.who {
		return Result{}, fmt.Errorf("rollout %s is driven by %s (heard %.1f s ago): abort it, or resume it once that driver is gone", rv.ID, rv.Rollout.Driver, rv.DriverAge.Seconds())
	}
	id := rv.ID
	ch, err := c.UpdateRollout(ctx, func(cur *fleet.Rollout) (*fleet.Rollout, string, error) {
		if !cur.Active() || cur.ID != id {
			return nil, "", fmt.Errorf("rollout %s ended meanwhile", id)
		}
		prev := cur.Driver
		cur.Driver, cur.StepAt = d.who, time.Now().UTC()
		return cur, fmt.Sprintf("rollout %s resumed at %s (was driven by %s)", id, describe(cur), prev), nil
	})
	if err != nil {
		return Result{}, err
	}
	if res, done := d.awaitApplied(ctx, ch, id); done {
		return res, nil
	}
	return d.run(ctx, id)
}

// Promote makes the active rollout's candidate the fleet's target now,
// skipping the remaining steps (an operator's call: no gate is asked).
func Promote(ctx context.Context, c *fleet.Controller) (fleet.Change, error) {
	return endNow(ctx, c, fleet.RolloutPromoted, "promoted by "+fleet.Operator())
}

// Abort sends every record back to the baseline now.
func Abort(ctx context.Context, c *fleet.Controller, why string) (fleet.Change, error) {
	if why == "" {
		why = "aborted by " + fleet.Operator()
	}
	return endNow(ctx, c, fleet.RolloutAborted, why)
}

func endNow(ctx context.Context, c *fleet.Controller, phase, reason string) (fleet.Change, error) {
	return c.UpdateRollout(ctx, func(cur *fleet.Rollout) (*fleet.Rollout, string, error) {
		if !cur.Active() {
			return nil, "", fmt.Errorf("no rollout in progress (inferops rollout status)")
		}
		cur.Phase, cur.Share, cur.Reason, cur.StepAt = phase, 0, reason, time.Now().UTC()
		return cur, fmt.Sprintf("rollout %s %s: %s", cur.ID, strings.ReplaceAll(phase, "_", " "), reason), nil
	})
}

// end writes a rollout's end (rolled back with the breached gate, or
// promoted) and publishes it as an event every console shows.
func (d *Driver) end(ctx context.Context, id, phase, reason string, gate *Gate) (Result, error) {
	c := d.cfg.Controller
	ch, err := c.UpdateRollout(ctx, func(cur *fleet.Rollout) (*fleet.Rollout, string, error) {
		if cur == nil || cur.ID != id || !cur.Active() {
			return nil, "", fmt.Errorf("rollout %s already ended", id)
		}
		cur.Reason, cur.StepAt = reason, time.Now().UTC()
		cur.Phase, cur.Share = phase, 0
		verb := "ROLLED BACK to " + cur.Baseline
		if phase == fleet.RolloutPromoted {
			verb = "PROMOTED " + cur.Candidate
		}
		return cur, fmt.Sprintf("rollout %s %s at %.4g%%: %s", id, verb, lastShare(cur), reason), nil
	})
	res := Result{ID: id, State: phase, Reason: reason, Gate: gate}
	if err != nil {
		return res, err
	}
	// Until every instance serves the outcome (10 s at most: a lost
	// instance applies it when it comes back).
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, _ = c.Wait(wctx, ch, nil)
	cancel()
	lvl := pipeline.Info
	if phase != fleet.RolloutPromoted {
		lvl = pipeline.Warn
	}
	_ = c.Publish(ctx, pipeline.Event{Source: pipeline.SourceFleet, Kind: pipeline.KindVersion, Level: lvl, Message: fmt.Sprintf("rollout %s %s: %s", id, strings.ReplaceAll(phase, "_", " "), reason)})
	d.log.Info("rollout ended", "id", id, "state", phase, "reason", reason)
	return res, nil
}

// run drives rollout id from its current step.
func (d *Driver) run(ctx context.Context, id string) (Result, error) {
	c := d.cfg.Controller
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	var (
		ref     fleet.Side // the baseline the gates compare with
		refStep = -2
		passing time.Time // since when every gate passed, this step
		step    = -2
		warmAt  time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return Result{ID: id, State: StateHolding, Reason: "the driver stopped: the fleet holds its step until inferops rollout resume or abort"}, ctx.Err()
		case <-t.C:
		}
		v := c.View()
		rv := v.Rollout
		if rv == nil || rv.Rollout == nil || rv.ID != id {
			return Result{ID: id, State: "replaced", Reason: "another rollout replaced it"}, nil
		}
		r := rv.Rollout
		if !r.Active() {
			return Result{ID: id, State: r.Phase, Reason: r.Reason}, nil
		}
		if r.Driver != d.who {
			return Result{ID: id, State: "replaced", Reason: "resumed by " + r.Driver}, fmt.Errorf("rollout %s was taken over by %s", id, r.Driver)
		}
		if r.Step != step {
			step, passing = r.Step, time.Time{}
		}
		// The reference baseline: the current one while it still serves a
		// real share (at 100% its window only drains, and its last few
		// rows say little).
		if r.Share < 100 && int(rv.Baseline.Predict.Count()) >= r.Plan.MinSamples {
			ref, refStep = rv.Baseline, r.Step
		}
		ds := DriverStatus{RefFromStep: refStep}
		elapsed := v.Time.Sub(r.StepAt)
		var next func() (Result, bool, error)
		switch {
		case len(rv.Pending) > 0:
			ds.Message = fmt.Sprintf("waiting for %s to apply %s", strings.Join(rv.Pending, ", "), describe(r))
		case r.Phase == fleet.RolloutWarming:
			if warmAt.IsZero() {
				warmAt = r.StepAt
			}
			w, gates := d.warmup(r, rv, ref, v.Time.Sub(warmAt))
			ds.Warmup, ds.Gates = w, gates
			state, why := Verdict(gates)
			switch {
			case state == GateBreach:
				next = d.rollback(ctx, id, r, *why)
			case w.Warm:
				ds.Message = fmt.Sprintf("warm: first request %.1f ms, p99 %.1f ms", w.FirstMs, w.P99Ms)
				next = d.advance(ctx, id, r, ds.Message)
			case v.Time.Sub(warmAt) > warmupTimeout(r.Plan.Hold()):
				g := Gate{Name: GateWarmup, State: GateBreach, Value: fmt.Sprintf("p99 %.1f ms over %d records", w.P99Ms, w.Records), Limit: fmt.Sprintf("warm within %s", warmupTimeout(r.Plan.Hold())),
					Detail: fmt.Sprintf("the candidate never warmed up: mirrored records answered at p99 %.1f ms (first %.1f ms), warm is under %.1f ms", w.P99Ms, w.FirstMs, w.LimitMs)}
				next = d.rollback(ctx, id, r, g)
			default:
				ds.Message = "warming up: " + w.String()
			}
		default:
			side := rv.Candidate
			if r.Plan.ShadowOnly() && rv.Shadowed != nil {
				side = *rv.Shadowed
			}
			ds.Gates = Evaluate(r.Plan, side, ref)
			state, why := Verdict(ds.Gates)
			switch state {
			case GateBreach:
				next = d.rollback(ctx, id, r, *why)
			case GateWait:
				passing = time.Time{}
				ds.Message = fmt.Sprintf("holding %s (%.0f s of %s): %s waits: %s", describe(r), elapsed.Seconds(), r.Plan.Hold(), why.Name, why.Detail)
			default:
				if passing.IsZero() {
					passing = v.Time
				}
				ds.PassingFor = v.Time.Sub(passing).Seconds()
				ds.Message = fmt.Sprintf("holding %s (%.0f s of %s), gates pass", describe(r), elapsed.Seconds(), r.Plan.Hold())
				if r.Plan.ShadowOnly() {
					ds.Message = fmt.Sprintf("shadowing %.4g%% for %.0f s, gates pass: promote or abort when satisfied", r.Shadow, elapsed.Seconds())
				} else if elapsed >= r.Plan.Hold() {
					next = d.advance(ctx, id, r, fmt.Sprintf("held %s with every gate passing", r.Plan.Hold()))
				}
			}
		}
		d.beat(ctx, id, ds)
		if d.cfg.Progress != nil {
			st := StatusOf(v)
			st.Driving, st.Gates, st.GatesBy = &ds, ds.Gates, "driver"
			if ds.Message != "" && r.Active() {
				st.Summary = fmt.Sprintf("rollout %s %s -> %s: %s", r.ID, r.Baseline, r.Candidate, ds.Message)
			}
			d.cfg.Progress(st)
		}
		if next != nil {
			res, done, err := next()
			if done || err != nil {
				return res, err
			}
			step, passing = -2, time.Time{}
		}
	}
}

// warmup judges the warm-up from the mirrored records: warm once
// plan.Warmup records were answered and their p99 is within the latency
// gate's limit; mirrored Predicts failing beyond the error gate breach.
func (d *Driver) warmup(r *fleet.Rollout, rv *fleet.RolloutView, ref fleet.Side, since time.Duration) (*WarmupResult, []Gate) {
	var sh fleet.Side
	if rv.Shadowed != nil {
		sh = *rv.Shadowed
	}
	p := r.Plan
	p.MinSamples = max(p.Warmup, 1)
	lat := latencyGate(p, sh, ref)
	errs := errorGate(p, sh, ref)
	w := &WarmupResult{Records: int(sh.Rows), FirstMs: sh.FirstMs, P50Ms: float64(sh.Predict.Quantile(50).Microseconds()) / 1000,
		P99Ms: msOf(sh.Predict), Errors: sh.Errors, Seconds: since.Seconds(), LimitMs: p.SLOMs}
	if int(ref.Predict.Count()) >= r.Plan.MinSamples {
		w.LimitMs = min(p.SLOMs, msOf(ref.Predict)*(1+p.LatencyTolerance)+p.LatencySlackMs)
	}
	w.Warm = lat.State == GatePass && errs.State != GateBreach
	// A slow warm-up is no breach: it is what warming is for; only the
	// time limit ends it.
	if lat.State == GateBreach {
		lat.State, lat.Detail = GateWait, "not warm yet: "+lat.Detail
	}
	return w, []Gate{lat, errs}
}

// advance moves to the next step, or promotes after the last.
func (d *Driver) advance(ctx context.Context, id string, r *fleet.Rollout, why string) func() (Result, bool, error) {
	return func() (Result, bool, error) {
		if r.Phase == fleet.RolloutCanary && r.Step == len(r.Plan.Steps)-1 {
			res, err := d.end(ctx, id, fleet.RolloutPromoted, why+" at every step", nil)
			return res, true, err
		}
		ch, err := d.cfg.Controller.UpdateRollout(ctx, func(cur *fleet.Rollout) (*fleet.Rollout, string, error) {
			if cur == nil || cur.ID != id || !cur.Active() || cur.Driver != d.who {
				return nil, "", fmt.Errorf("rollout %s changed meanwhile", id)
			}
			if cur.Phase == fleet.RolloutWarming {
				cur.Phase, cur.Step = fleet.RolloutCanary, 0
			} else {
				cur.Step++
			}
			cur.Share, cur.StepAt, cur.Reason = cur.Plan.Steps[cur.Step], time.Now().UTC(), ""
			return cur, fmt.Sprintf("rollout %s: %s (%s)", id, describe(cur), why), nil
		})
		if err != nil {
			return Result{ID: id}, false, nil // re-read: the loop sees what changed
		}
		if res, done := d.awaitApplied(ctx, ch, id); done {
			return res, true, nil
		}
		return Result{}, false, nil
	}
}

// rollback ends the rollout at once, naming the gate.
func (d *Driver) rollback(ctx context.Context, id string, r *fleet.Rollout, g Gate) func() (Result, bool, error) {
	return func() (Result, bool, error) {
		reason := fmt.Sprintf("gate %s breached: %s (limit %s)", g.Name, g.Detail, g.Limit)
		res, err := d.end(context.WithoutCancel(ctx), id, fleet.RolloutRolledBack, reason, &g)
		return res, true, err
	}
}

// beat publishes the driver's heartbeat with its judgement.
func (d *Driver) beat(ctx context.Context, id string, ds DriverStatus) {
	b, err := json.Marshal(ds)
	if err != nil {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := d.cfg.Controller.Beat(bctx, fleet.DriverBeat{ID: id, Driver: d.who, Status: b}); err != nil && ctx.Err() == nil {
		d.log.Warn("rollout heartbeat", "err", err)
	}
}
