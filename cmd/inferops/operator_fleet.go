package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// fleetOps is the group's fleet as the operator actions use it: to tell
// every console what was done (fleet events), and for --stop-fleet to
// stop the workers and put the desired state back. The controller is
// opened on first use: a command that needs neither never reads the fleet.
type fleetOps struct {
	kc           cluster.Config
	topics       fleet.Topics
	group, input string

	mu  sync.Mutex
	ctl *fleet.Controller
}

func (f *fleetOps) controller(ctx context.Context) (*fleet.Controller, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctl != nil {
		return f.ctl, nil
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ctl, err := fleet.Open(octx, fleet.ControllerConfig{Kafka: f.kc, Topics: f.topics, Group: f.group, Input: f.input})
	if err != nil {
		return nil, fmt.Errorf("open the fleet of %s: %w", f.group, err)
	}
	f.ctl = ctl
	return ctl, nil
}

// publish writes a fleet event every console of the group shows.
func (f *fleetOps) publish(ctx context.Context, ev pipeline.Event) error {
	ctl, err := f.controller(ctx)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ctl.Publish(pctx, ev)
}

// stop scales every instance that follows control to 0 and waits until
// each has applied it (at most timeout); restore writes the desired state
// from before back and waits for it the same way. progress hears each step.
func (f *fleetOps) stop(ctx context.Context, why string, timeout time.Duration, progress func(string)) (restore func(context.Context) error, err error) {
	ctl, err := f.controller(ctx)
	if err != nil {
		return nil, err
	}
	v := ctl.View()
	progress(fmt.Sprintf("stopping the fleet of %s: %d live instances, %d workers (desired state: %s)", f.group, v.Totals.Live, v.Totals.Workers, v.Desired.Summary()))
	prev, ch, err := ctl.Stop(ctx, why)
	if err != nil {
		return nil, err
	}
	restore = func(ctx context.Context) error {
		back, err := ctl.Restore(ctx, prev, why)
		if err != nil {
			return fmt.Errorf("restore the fleet's desired state (%s): %w; put it back with inferops fleet scale/target/resume", prev.Summary(), err)
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ack, err := ctl.Wait(wctx, back, nil)
		if err != nil {
			return fmt.Errorf("the fleet's desired state is restored (%s), but not applied everywhere yet: %w", prev.Summary(), err)
		}
		progress("restored the fleet: " + ack.String())
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ack, err := ctl.Wait(wctx, ch, nil)
	if err != nil {
		return restore, fmt.Errorf("stop the fleet: %w", err)
	}
	progress("stopped: " + ack.String())
	return restore, nil
}

func (f *fleetOps) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctl != nil {
		_ = f.ctl.Close()
	}
}
