package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/rollout"
	"github.com/inferops/inferops/tui"
)

var _ tui.Roller = (*Adapter)(nil)

func (a *Adapter) rollWritable() (*fleet.Controller, error) {
	if a.cfg.ReadOnly != "" {
		return nil, fmt.Errorf("read-only (%s)", a.cfg.ReadOnly)
	}
	if a.cfg.Fleet == nil {
		return nil, fmt.Errorf("rollouts go through the fleet, which is not read here: %s", a.cfg.FleetErr)
	}
	return a.cfg.Fleet, nil
}

func (a *Adapter) newDriver(ctl *fleet.Controller) *rollout.Driver {
	return rollout.NewDriver(rollout.DriverConfig{Controller: ctl, TFServing: a.cfg.TFS, Model: a.cfg.Model, Logger: a.cfg.Logger.With("part", "rollout")})
}

// StartRollout implements tui.Roller: the driver runs in the background
// from here, and the call returns once the rollout is in the desired
// state (or the driver refused it).
func (a *Adapter) StartRollout(ctx context.Context, to string) (string, error) {
	opts := a.rolloutOptions()
	return a.drive(ctx, "start", func(ctx context.Context, d *rollout.Driver) (rollout.Result, error) {
		return d.Start(ctx, to, opts)
	})
}

// ResumeRollout implements tui.Roller: this console drives a rollout
// whose driver was lost, from the step it holds.
func (a *Adapter) ResumeRollout(ctx context.Context) (string, error) {
	return a.drive(ctx, "resume", func(ctx context.Context, d *rollout.Driver) (rollout.Result, error) {
		return d.Resume(ctx)
	})
}

// drive starts run on a driver in a goroutine under Run's context and
// waits, within ctx, until the desired state shows this driver at the
// wheel of an active rollout that began (or was resumed) after the call.
func (a *Adapter) drive(ctx context.Context, verb string, run func(context.Context, *rollout.Driver) (rollout.Result, error)) (string, error) {
	ctl, err := a.rollWritable()
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	if a.roll.running != nil {
		id := a.roll.id
		a.mu.Unlock()
		return "", fmt.Errorf("this console already drives rollout %s", id)
	}
	done := make(chan struct{})
	a.roll = rollState{running: done}
	a.mu.Unlock()

	d := a.newDriver(ctl)
	since := time.Now().UTC()
	type outcome struct {
		res rollout.Result
		err error
	}
	out := make(chan outcome, 1)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(done)
		res, err := run(a.runCtx, d)
		out <- outcome{res, err}
		a.rolloutEndedEvent(verb, res, err)
		a.mu.Lock()
		a.roll = rollState{}
		a.mu.Unlock()
	}()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case o := <-out:
			if o.err != nil {
				return "", o.err
			}
			return rolloutEnded(o.res.ID, o.res.State, o.res.Reason), nil
		case <-ctx.Done():
			return "", fmt.Errorf("the rollout did not show in the desired state in time (%w); it may still start: see the rollout panel", ctx.Err())
		case <-tick.C:
		}
		rv := ctl.View().Rollout
		if rv == nil || !rv.Rollout.Active() || rv.Rollout.Driver != d.Who() {
			continue
		}
		r := rv.Rollout
		if at := r.Started; verb == "resume" {
			at = r.StepAt
			if at.Before(since) {
				continue
			}
		} else if at.Before(since.Truncate(time.Second)) {
			continue
		}
		a.mu.Lock()
		if a.roll.running == done {
			a.roll.id = r.ID
		}
		a.mu.Unlock()
		msg := fmt.Sprintf("rollout %s %s -> %s driven from this console (%s): %s", r.ID, r.Baseline, r.Candidate, d.Who(), planSteps(r.Plan.Steps))
		if verb == "resume" {
			msg = fmt.Sprintf("rollout %s resumed from this console (%s) at %.4g%%", r.ID, d.Who(), r.Share)
		}
		a.event(pipeline.KindVersion, pipeline.Info, "%s", msg)
		return msg, nil
	}
}

func planSteps(steps []float64) string {
	s := ""
	for i, p := range steps {
		if i > 0 {
			s += " -> "
		}
		s += fmt.Sprintf("%.4g%%", p)
	}
	return s
}

// rolloutEndedEvent logs how this console's driver ended: the rollout's
// end, or, when the console closes first, that the fleet holds its step.
func (a *Adapter) rolloutEndedEvent(verb string, res rollout.Result, err error) {
	e := pipeline.Event{Time: time.Now(), Source: pipeline.SourceConsole, Kind: pipeline.KindVersion, Level: pipeline.Info}
	switch {
	case err != nil && errors.Is(err, context.Canceled) || res.State == rollout.StateHolding:
		a.mu.Lock()
		id := a.roll.id
		a.mu.Unlock()
		e.Level = pipeline.Warn
		e.Message = fmt.Sprintf("this console stopped driving rollout %s: the fleet holds its step until it is resumed (inferops rollout resume) or aborted", orDashID(id, res.ID))
	case err != nil:
		e.Level = pipeline.Warn
		e.Message = fmt.Sprintf("rollout %s from this console: %v", verb, err)
	default:
		e.Message = rolloutEnded(res.ID, res.State, res.Reason)
		if res.State == rollout.StateRolled {
			e.Level = pipeline.Warn
		}
	}
	a.mu.Lock()
	a.addEventLocked(e)
	a.mu.Unlock()
}

func orDashID(a, b string) string {
	if a != "" {
		return a
	}
	if b != "" {
		return b
	}
	return "-"
}

// PromoteRollout implements tui.Roller.
func (a *Adapter) PromoteRollout(ctx context.Context) (string, error) {
	if _, err := a.rollWritable(); err != nil {
		return "", err
	}
	return a.steer(ctx, func(ctx context.Context, c *fleet.Controller) (fleet.Change, error) { return rollout.Promote(ctx, c) })
}

// AbortRollout implements tui.Roller.
func (a *Adapter) AbortRollout(ctx context.Context) (string, error) {
	if _, err := a.rollWritable(); err != nil {
		return "", err
	}
	return a.steer(ctx, func(ctx context.Context, c *fleet.Controller) (fleet.Change, error) {
		return rollout.Abort(ctx, c, "aborted from the console by "+fleet.Operator())
	})
}
