package tui

import "context"

// Backend is everything the console can ask of the running pipeline. The
// adapter in tui/live implements it over the real collector, worker pool,
// perf runner and demo generator; the console itself never talks to Kafka
// or gRPC. Every method may block (a scale waits for a rebalance), so the
// model calls them from tea.Cmds, never from Update or View.
type Backend interface {
	// Snapshot returns the latest view-model. It must be cheap: the adapter
	// refreshes in the background and hands over a copy.
	Snapshot() Data
	// ScaleTo sets the number of local workers (group members).
	ScaleTo(ctx context.Context, n int) error
	// SetTarget switches the model version: "latest", a version number, or
	// "label:NAME".
	SetTarget(ctx context.Context, spec string) error
	// SetPaused pauses or resumes consumption.
	SetPaused(ctx context.Context, paused bool) error
	// AdjustDemoRate steps the demo traffic rate up (+1) or down (-1) and
	// returns the new rate in msg/s.
	AdjustDemoRate(step int) (float64, error)
	// StartPerf starts the named scenario; progress and the result arrive in
	// later snapshots.
	StartPerf(ctx context.Context, scenario string) error
	// CancelPerf stops a running perf run.
	CancelPerf() error
	// ExportReport writes the triage report of this moment (Markdown and
	// its JSON twin) from what the backend already holds and returns both
	// paths. It only writes local files, so read-only consoles may call it.
	ExportReport() (md, js string, err error)
}
