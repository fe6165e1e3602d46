package live

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// poolState is what the worker looked like at the previous refresh.
type poolState struct {
	stats     worker.Stats
	lastEvent time.Time
	breached  bool
	// Dead letters are summarised into one event per dlqEvery instead of
	// one per record: the DLQ panel has the details, and a producer sending
	// 1% garbage must not push every other event off the log.
	dlqAt     time.Time
	dlqCount  uint64
	dlqErrors map[string]uint64
}

const dlqEvery = 30 * time.Second

func (a *Adapter) hasPoolLocked() bool { return a.cfg.Pool != nil }

// localMembersLocked indexes the pool's members by group member id, which
// is what the collector's Member.MemberID holds.
func (a *Adapter) localMembersLocked() map[string]tui.Member {
	if a.cfg.Pool == nil {
		return nil
	}
	out := make(map[string]tui.Member, len(a.pool.stats.Members))
	for _, m := range a.pool.stats.Members {
		out[m.ID] = tui.Member{ID: m.ID, ClientID: m.ClientID, Local: true, Partitions: m.Partitions,
			InRate: m.InRate, OutRate: m.OutRate, InFlight: m.InFlight, Batch: m.AvgBatch}
	}
	return out
}

func (a *Adapter) extraLoops() []func(context.Context) {
	var ls []func(context.Context)
	if a.cfg.Pool != nil {
		ls = append(ls, a.poolLoop)
	}
	if a.cfg.Perf != nil {
		ls = append(ls, a.perfLoop)
	}
	return ls
}

func pct(l worker.LatencySummary) tui.Percentiles {
	return tui.Percentiles{P50: l.P50, P95: l.P95, P99: l.P99, Max: l.Max}
}

func (a *Adapter) poolLoop(ctx context.Context) {
	p := a.cfg.Pool
	st := p.Stats()
	evs := p.Events()
	a.mu.Lock()
	defer a.mu.Unlock()
	now := st.Time
	if now.IsZero() {
		now = time.Now()
	}
	h := &a.d.Header
	h.Workers, h.Breaker, h.Target, h.Paused = st.Workers, st.Breaker, st.Target, st.Paused

	l := &a.d.Latency
	l.At, l.Predict, l.E2E, l.Rows, l.Batch = now, pct(st.Predict), pct(st.EndToEnd), st.QPS, st.AvgBatch
	l.QPS = 0
	if st.AvgBatch > 0 {
		l.QPS = st.QPS / st.AvgBatch
	}
	l.Errors = int64(st.Errors["predict"])
	a.lat = push(a.lat, tui.LatencySample{T: now, Percentiles: l.Predict})
	a.advice.workers = append(a.advice.workers, st)
	if len(a.advice.workers) > adviceWindow {
		a.advice.workers = a.advice.workers[len(a.advice.workers)-adviceWindow:]
	}
	l.History = a.lat
	a.out = push(a.out, tui.Sample{T: now, V: st.QPS})
	a.d.Flow.Out = a.out

	// The worker's own events, once each, newest first.
	for _, e := range evs {
		if !e.Time.After(a.pool.lastEvent) {
			continue
		}
		a.pool.lastEvent = e.Time
		if e.Kind == pipeline.KindDLQ {
			continue // summarised below, every dlqEvery
		}
		a.addEventLocked(e)
	}
	// SLO breaches: once when end-to-end p99 crosses the SLO, once when it
	// recovers, not every second in between.
	if slo := a.cfg.SLO; st.EndToEnd.Count > 0 {
		// Recovery needs p99 under 80% of the SLO: a p99 hovering at the
		// SLO would otherwise log a breach and a recovery every second.
		breach := st.EndToEnd.P99 > slo || (a.pool.breached && st.EndToEnd.P99 > slo*8/10)
		if breach != a.pool.breached {
			if breach {
				a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceWorker, Kind: pipeline.KindSLO, Level: pipeline.Warn, Message: fmt.Sprintf("end-to-end p99 %s is over the %s SLO", st.EndToEnd.P99.Round(time.Millisecond), slo)})
			} else {
				a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceWorker, Kind: pipeline.KindSLO, Level: pipeline.Info, Message: fmt.Sprintf("end-to-end p99 %s is back within the %s SLO", st.EndToEnd.P99.Round(time.Millisecond), slo)})
			}
			a.pool.breached = breach
		}
	}

	if a.pool.dlqAt.IsZero() {
		a.pool.dlqAt, a.pool.dlqErrors = now, map[string]uint64{}
	}
	if now.Sub(a.pool.dlqAt) >= dlqEvery || (a.pool.dlqCount == 0 && st.DLQ > 0) {
		if n := st.DLQ - a.pool.dlqCount; n > 0 {
			var reasons []string
			for k, v := range st.Errors {
				if d := v - a.pool.dlqErrors[k]; d > 0 && pipeline.IsReason(k) {
					reasons = append(reasons, fmt.Sprintf("%s %d", k, d))
				}
			}
			sort.Strings(reasons)
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceWorker, Kind: pipeline.KindDLQ, Level: pipeline.Warn, Message: fmt.Sprintf("%d dead letters since %s: %s", n, a.pool.dlqAt.Format("15:04:05"), strings.Join(reasons, ", "))})
		}
		a.pool.dlqAt, a.pool.dlqCount = now, st.DLQ
		for k, v := range st.Errors {
			a.pool.dlqErrors[k] = v
		}
	}

	a.pool.stats = st
	if a.last != nil {
		a.mergeMembersLocked(a.last)
	}
}

var errNoWorker = errors.New("no worker in this console (started with --no-worker or --read-only)")

func (a *Adapter) writable() error {
	if a.cfg.ReadOnly != "" {
		return fmt.Errorf("read-only (%s)", a.cfg.ReadOnly)
	}
	if a.cfg.Pool == nil {
		return errNoWorker
	}
	return nil
}

// ScaleTo implements tui.Backend.
func (a *Adapter) ScaleTo(ctx context.Context, n int) error {
	if err := a.writable(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.cfg.Pool.ScaleTo(n) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("scale to %d: still draining after the timeout; it continues in the background", n)
	}
}

// SetTarget implements tui.Backend: "latest", "2" or "label:stable".
func (a *Adapter) SetTarget(ctx context.Context, spec string) error {
	if err := a.writable(); err != nil {
		return err
	}
	t, err := tfserving.ParseTarget(spec)
	if err != nil {
		return err
	}
	if a.cfg.TFS != nil {
		// Refuse a target the server cannot serve instead of sending every
		// record to retries and the breaker.
		if _, err := a.cfg.TFS.Metadata(ctx, a.cfg.Model, t); err != nil {
			return fmt.Errorf("%s is not servable: %w", t, err)
		}
	}
	a.cfg.Pool.SetTarget(t)
	return nil
}

// SetPaused implements tui.Backend.
func (a *Adapter) SetPaused(ctx context.Context, paused bool) error {
	if err := a.writable(); err != nil {
		return err
	}
	if paused {
		a.cfg.Pool.Pause()
	} else {
		a.cfg.Pool.Resume()
	}
	return nil
}

// AdjustDemoRate implements tui.Backend.
func (a *Adapter) AdjustDemoRate(step int) (float64, error) {
	if a.cfg.Demo == nil {
		return 0, errors.New("no demo traffic: attached to a real cluster")
	}
	r := a.cfg.Demo.Step(step)
	a.event(pipeline.KindDemo, pipeline.Info, "demo traffic target %.0f msg/s", r)
	return r, nil
}
