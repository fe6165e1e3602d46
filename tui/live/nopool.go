package live

import (
	"context"
	"errors"

	"github.com/inferops/inferops/tui"
)

// The worker pool, model server and perf runner join the adapter as they
// land; until then the console watches Kafka and drives the demo traffic.

func (a *Adapter) hasPoolLocked() bool { return false }

func (a *Adapter) localMembersLocked() map[string]tui.Member { return nil }

func (a *Adapter) loops() []func(context.Context) { return nil }

var errNoWorker = errors.New("no worker in this console (started with --no-worker)")

// ScaleTo implements tui.Backend.
func (a *Adapter) ScaleTo(ctx context.Context, n int) error { return errNoWorker }

// SetTarget implements tui.Backend.
func (a *Adapter) SetTarget(ctx context.Context, spec string) error { return errNoWorker }

// SetPaused implements tui.Backend.
func (a *Adapter) SetPaused(ctx context.Context, paused bool) error { return errNoWorker }

// StartPerf implements tui.Backend.
func (a *Adapter) StartPerf(ctx context.Context, scenario string) error {
	return errors.New("perf runs are not available in this build")
}

// CancelPerf implements tui.Backend.
func (a *Adapter) CancelPerf() error { return nil }

// AdjustDemoRate implements tui.Backend.
func (a *Adapter) AdjustDemoRate(step int) (float64, error) {
	if a.cfg.Demo == nil {
		return 0, errors.New("no demo traffic: attached to a real cluster")
	}
	r := a.cfg.Demo.Step(step)
	a.event("demo", tui.Info, "demo traffic target %.0f msg/s", r)
	return r, nil
}
