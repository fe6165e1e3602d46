package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/inferops/inferops/infer/perf"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// PerfRunner starts the seed's perf scenarios from the console. Base holds
// everything but the scenario (Kafka, the TF Serving client, history path);
// Duration, when set, overrides each scenario's sending time.
type PerfRunner struct {
	Base     perf.Options
	Duration time.Duration
	// Rate, when set, overrides each scenario's target rate (a small VM or
	// a test cannot absorb the seed's 55,000 msg/s).
	Rate float64
}

// scenarios is the menu, with the duration override applied.
func (p *PerfRunner) scenarios() []perf.Scenario {
	ss := perf.Scenarios()
	for i := range ss {
		if p.Duration > 0 {
			ss[i].Duration = p.Duration
		}
		if p.Rate > 0 {
			ss[i].Rate = p.Rate
		}
	}
	return ss
}

// perfScenarios is the perf menu.
func (a *Adapter) perfScenarios() []tui.Scenario {
	if a.cfg.Perf == nil {
		return nil
	}
	var out []tui.Scenario
	for _, s := range a.cfg.Perf.scenarios() {
		out = append(out, tui.Scenario{Name: s.Name, Streams: s.Streams, PayloadBytes: s.PayloadBytes, TargetRate: s.Rate, SLO: s.SLO, Duration: s.Duration})
	}
	return out
}

// perfState is the run in progress, if any.
type perfState struct {
	run      *perf.Run
	scenario perf.Scenario
}

// StartPerf implements tui.Backend. The run outlives the key press: it is
// started on the background context and cancelled with CancelPerf or when
// the console quits.
func (a *Adapter) StartPerf(ctx context.Context, name string) error {
	if a.cfg.ReadOnly != "" {
		return fmt.Errorf("read-only (%s)", a.cfg.ReadOnly)
	}
	if a.cfg.Perf == nil {
		return errors.New("perf runs need TF Serving (set --tfserving)")
	}
	var sc perf.Scenario
	found := false
	for _, s := range a.cfg.Perf.scenarios() {
		if s.Name == name {
			sc, found = s, true
		}
	}
	if !found {
		return fmt.Errorf("no perf scenario %q", name)
	}
	a.mu.Lock()
	busy := a.perf.run != nil
	a.mu.Unlock()
	if busy {
		return errors.New("a perf run is already in progress (p cancels it)")
	}
	opts := a.cfg.Perf.Base
	opts.Scenario = sc
	run, err := perf.Start(a.runCtx, opts)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.perf = perfState{run: run, scenario: sc}
	a.d.Perf.Err = ""
	a.d.Perf.Running = &tui.PerfProgress{Scenario: sc.Name, Phase: perf.PhaseStarting, Duration: sc.Duration}
	a.addEventLocked(pipeline.Event{Time: time.Now(), Source: pipeline.SourcePerf, Kind: pipeline.KindPerf, Level: pipeline.Info, Message: fmt.Sprintf("perf %s started: %d streams, %d B, %.0f msg/s for %s on %s", sc.Name, sc.Streams, sc.PayloadBytes, sc.Rate, sc.Duration, opts.Input)})
	a.mu.Unlock()
	return nil
}

// CancelPerf implements tui.Backend.
func (a *Adapter) CancelPerf() error {
	a.mu.Lock()
	run := a.perf.run
	a.mu.Unlock()
	if run == nil {
		return errors.New("no perf run in progress")
	}
	run.Cancel()
	return nil
}

func (a *Adapter) perfLoop(ctx context.Context) {
	a.mu.Lock()
	run, sc := a.perf.run, a.perf.scenario
	a.mu.Unlock()
	if run == nil {
		return
	}
	select {
	case <-run.Done():
	default:
		p := run.Progress()
		a.mu.Lock()
		a.d.Perf.Running = &tui.PerfProgress{Scenario: sc.Name, Phase: p.Phase, Elapsed: p.Elapsed, Duration: p.Duration,
			Sent: int64(p.Sent), Received: int64(p.Received), P99: time.Duration(p.CurrentP99 * float64(time.Millisecond))}
		a.mu.Unlock()
		return
	}
	res, err := run.Result()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.perf = perfState{}
	a.d.Perf.Running = nil
	now := time.Now()
	if err != nil && res == nil {
		a.d.Perf.Err = "perf " + sc.Name + ": " + err.Error()
		a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourcePerf, Kind: pipeline.KindPerf, Level: pipeline.Error, Message: a.d.Perf.Err})
		return
	}
	pr := perfResult(res, err)
	a.d.Perf.Result = pr
	lv := pipeline.Info
	if !pr.Pass {
		lv = pipeline.Warn
	}
	a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourcePerf, Kind: pipeline.KindPerf, Level: lv, Message: "perf " + pr.Scenario + " " + map[bool]string{true: "PASS", false: "FAIL"}[pr.Pass] + ": " + pr.Verdict})
}

// perfResult turns a perf.Result into the results table: each figure with
// the previous run's value when there is one.
func perfResult(r *perf.Result, runErr error) *tui.PerfResult {
	prev := map[string]perf.Change{}
	if r.Comparison != nil {
		for _, f := range r.Comparison.Figures {
			prev[f.Name] = f
		}
	}
	row := func(label, key, unit string, v float64, higher bool) tui.PerfMetric {
		m := tui.PerfMetric{Name: label, Unit: unit, Value: v, HigherIsBetter: higher}
		if c, ok := prev[key]; ok {
			m.Prev, m.HasPrev = c.Previous, true
		}
		return m
	}
	l := r.Latency
	out := &tui.PerfResult{Scenario: r.Scenario, At: r.StartedAt, Pass: r.Pass, Metrics: []tui.PerfMetric{
		row("kafka msg/s", "kafka_msgs_per_sec", "", r.KafkaMsgsPerSec, true),
		row("inference msg/s", "tf_qps", "", r.TFQPS, true),
		row("latency avg", "latency_avg_ms", "ms", l.Avg, false),
		row("latency p50", "latency_p50_ms", "ms", l.P50, false),
		row("latency p95", "latency_p95_ms", "ms", l.P95, false),
		row("latency p99", "latency_p99_ms", "ms", l.P99, false),
		row("latency p99.9", "latency_p999_ms", "ms", l.P999, false),
		row("latency max", "latency_max_ms", "ms", l.Max, false),
		row("sent", "", "", float64(r.Sent), true),
		row("lost", "lost", "", float64(r.Lost), false),
		row("errors", "errors", "", float64(r.Errors), false),
	}}
	switch {
	case runErr != nil:
		out.Pass = false
		out.Verdict = "stopped: " + runErr.Error()
	case r.Sent == 0:
		out.Verdict = "nothing was sent"
	case r.Pass:
		out.Verdict = fmt.Sprintf("p99 %.1fms within SLO %.0fms, nothing lost", l.P99, r.SLOms)
	case r.Lost > 0:
		out.Verdict = fmt.Sprintf("%d of %d records lost; p99 %.1fms vs SLO %.0fms", r.Lost, r.Sent, l.P99, r.SLOms)
	default:
		out.Verdict = fmt.Sprintf("p99 %.1fms over SLO %.0fms", l.P99, r.SLOms)
	}
	out.Verdict += fmt.Sprintf(" · target %.0f msg/s", r.TargetRate)
	if r.Comparison != nil && !r.Comparison.SameTarget {
		out.Verdict += " (last run had another target)"
	}
	return out
}
