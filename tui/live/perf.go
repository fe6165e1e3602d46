package live

import (
	"context"
	"errors"

	"github.com/inferops/inferops/tui"
)

// PerfRunner starts perf runs for the console; it joins when infer/perf lands.
type PerfRunner struct{}

type perfState struct{}

func (a *Adapter) perfLoop(ctx context.Context) {}

func (a *Adapter) perfScenarios() []tui.Scenario { return nil }

// StartPerf implements tui.Backend.
func (a *Adapter) StartPerf(ctx context.Context, scenario string) error {
	return errors.New("perf runs are not available in this build")
}

// CancelPerf implements tui.Backend.
func (a *Adapter) CancelPerf() error { return nil }
