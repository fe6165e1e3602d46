// Package live feeds the console from the real pipeline: it turns the lag
// collector's snapshots, the worker pool's stats, the model server's status
// and the perf runner's progress into the one tui.Data view-model, keeps
// the histories the charts draw, derives events, and implements
// tui.Backend by calling the controllers. It is the only console code that
// knows those packages; tui/ itself renders Data and nothing else.
package live

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/rollout"
	"github.com/inferops/inferops/tui"
)

// History is how many one-second samples the charts can draw (a sweep
// chart at 200 columns shows 400 s).
const History = 600

// Config is what the adapter watches and how the console was started.
type Config struct {
	Collector *cluster.Collector // required: the Kafka side
	// DLQReader reads the dead-letter topic for the DLQ panel every
	// DLQEvery (default 5 s), DLQTail records per partition (default 20):
	// the topic, not this process's worker, so the panel is right whoever
	// wrote the dead letters. nil: the panel says it is not read.
	DLQReader *cluster.DLQReader
	DLQEvery  time.Duration
	DLQTail   int
	Demo      *demo.Generator   // nil when attached to a real cluster
	TFS       *tfserving.Client // nil: no model panel data
	Pool      *worker.Pool      // nil: --no-worker / --read-only
	// Fleet is every worker pool of the group through Kafka (this
	// console's own pool is one instance): the workers panel, the header,
	// the latency, throughput and models panels come from its merged
	// telemetry, and the keys steer it. nil: FleetErr says why, and the
	// console shows Kafka's members and steers only its own pool.
	Fleet    *fleet.Controller
	FleetErr string
	Instance string // this console's own pool's instance; "" with --no-worker
	// ServerMetrics reads TF Serving's own Prometheus page
	// (--tfserving-metrics) for the latency panel's server rows; nil:
	// ServerMetricsErr says why they are unknown ("" draws none).
	ServerMetrics    *tfserving.MetricsWatcher
	ServerMetricsErr string
	Perf             *PerfRunner // nil: perf runs unavailable
	Ops              OpsConfig   // DLQ replays and offset resets (operator.go)
	// Rollout is the plan the version menu's "roll out gradually" starts
	// (rollout.go); zero Steps: rollout.DefaultOptions(). A rollout needs
	// Fleet, and TFS to warm the candidate up.
	Rollout rollout.Options
	// Labels maps version -> labels when the operator knows them (TF
	// Serving's GetModelStatus does not report labels).
	Labels map[int64][]string
	Logger *slog.Logger

	Mode     string // "embedded" or "attached"
	Brokers  []string
	ReadOnly string
	NoWorker bool

	Input, Output, DLQ, Group, Model, TFServing string
	SLO                                         time.Duration
	Interval                                    time.Duration // refresh; default 1 s

	// ReportDir is where the export key writes triage reports (the
	// console passes <state dir>/reports); empty: exporting is refused.
	ReportDir string
	// ReportConfig is the effective configuration for the report, and
	// Secrets are values (SASL password) the report must never contain.
	ReportConfig []report.Setting
	Secrets      []string
	Version      string // inferops version, shown in the report
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Mode == "" {
		c.Mode = "embedded"
	}
	if c.SLO <= 0 {
		c.SLO = 50 * time.Millisecond
	}
	if c.DLQEvery <= 0 {
		c.DLQEvery = 5 * time.Second
	}
	if c.DLQTail <= 0 {
		c.DLQTail = 20
	}
}

// Validate reports a config the adapter cannot run with.
func (c Config) Validate() error {
	if c.Collector == nil {
		return fmt.Errorf("console: no Kafka lag collector (is --brokers reachable?)")
	}
	return nil
}

// Adapter is the console's tui.Backend over the real pipeline.
type Adapter struct {
	cfg Config

	mu     sync.Mutex
	d      tui.Data
	in     []tui.Sample
	out    []tui.Sample
	lag    []float64
	lat    []tui.LatencySample
	events []pipeline.Event // newest first, capped: what the report exports
	shown  []tui.Event      // the same, as the event panel draws them
	last   *cluster.Snapshot
	dlq    *cluster.DLQTail // the last tail read, for the report
	parts  partsState
	labels map[int64][]string
	sigKey string // the versions the shown signature was read for
	// hostEvents counts the TF Serving host events already in the log.
	hostEvents int
	pool       poolState
	fleet      fleetState
	// fleetVersions is the fleet's traffic per model version, which the
	// models panel shows instead of this process's client's.
	fleetVersions map[int64]versionTraffic
	perf          perfState
	advice        adviceState
	ops           opsState
	roll          rollState // the rollout this console drives (rollout_driver.go)

	wg     sync.WaitGroup
	runCtx context.Context // Run's context: background work (perf runs) ends with it
}

// partsState remembers what the Kafka side looked like at the previous
// refresh, to turn changes into events.
type partsState struct {
	groupState string
	members    int
	health     string
	warnings   map[string]bool // codes of the previous refresh's warnings
	rebalance  *cluster.Rebalance
}

// New returns an adapter; Run starts its refresh loops.
func New(cfg Config) (*Adapter, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, labels: cfg.Labels}
	a.d = tui.Data{
		Mode: cfg.Mode, Brokers: cfg.Brokers, ReadOnly: cfg.ReadOnly, Attached: cfg.Mode != "embedded",
		NoWorker: cfg.NoWorker, Input: cfg.Input, Output: cfg.Output, DLQTopic: cfg.DLQ, Group: cfg.Group,
		Model: cfg.Model, TFServing: cfg.TFServing,
	}
	a.d.Latency.SLO = cfg.SLO
	a.d.Perf.Scenarios = a.perfScenarios()
	a.runCtx = context.Background()
	a.d.Header.Breaker = "-"
	if cfg.DLQReader == nil {
		a.d.DLQ.Err = "the DLQ topic is not read here (no reader configured)"
	}
	a.d.Fleet.Err = cfg.FleetErr
	if cfg.Fleet == nil && cfg.FleetErr == "" {
		a.d.Fleet.Err = "no fleet controller configured"
	}
	a.d.Latency.Server.Err = cfg.ServerMetricsErr
	return a, nil
}

// Run refreshes every source until ctx ends. Each source has its own loop,
// so a slow Kafka cluster does not freeze the latency panel.
func (a *Adapter) Run(ctx context.Context) {
	a.runCtx = ctx
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.cfg.Collector.Run(ctx, a.cfg.Interval, a.onKafka)
	}()
	if a.cfg.DLQReader != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.dlqLoop(ctx)
		}()
	}
	for _, loop := range a.loops() {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			t := time.NewTicker(a.cfg.Interval)
			defer t.Stop()
			for {
				loop(ctx)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
}

// loops are the per-source refreshers besides the Kafka collector.
func (a *Adapter) loops() []func(context.Context) {
	var ls []func(context.Context)
	if a.cfg.TFS != nil {
		ls = append(ls, a.modelsLoop)
	}
	if a.cfg.Fleet != nil {
		ls = append(ls, a.fleetLoop)
	}
	if a.cfg.ServerMetrics != nil {
		ls = append(ls, a.serverLoop)
	}
	return append(ls, a.extraLoops()...)
}

// dlqLoop reads the tail of the dead-letter topic every DLQEvery, on its
// own timer: a slow Fetch must not hold up the lag table.
func (a *Adapter) dlqLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tail, err := a.cfg.DLQReader.Tail(qctx, a.cfg.DLQTail)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.onDLQ(tail, err)
		t.Reset(a.cfg.DLQEvery)
	}
}

func (a *Adapter) onDLQ(tail *cluster.DLQTail, err error) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if a.d.DLQ.Err != msg {
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceKafka, Kind: pipeline.KindError, Level: pipeline.Warn, Message: "dlq: " + msg})
		}
		d := a.d.DLQ // keep what was read last, say why it is not newer
		d.Err = msg
		a.d.DLQ = d
		return
	}
	recs := make([]tui.DeadLetter, 0, len(tail.Records))
	for _, r := range tail.Records { // newest first already
		src := "-"
		if r.Partition >= 0 {
			src = r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
		}
		recs = append(recs, tui.DeadLetter{T: r.Time, Reason: r.Reason, Source: src, Preview: string(r.Preview)})
	}
	a.d.DLQ = tui.DLQData{At: tail.Time, Total: tail.Total, Read: len(tail.Records), Records: recs}
	a.dlq = tail
}

// Wait returns when every loop Run started has stopped.
func (a *Adapter) Wait() { a.wg.Wait() }

// Snapshot implements tui.Backend: a copy of the latest view-model. Every
// slice in it was built fresh by an update and is never written again, so
// the copy can be shared with the renderer.
func (a *Adapter) Snapshot() tui.Data {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.d
	d.Now = time.Now()
	d.Events.Items = a.shown
	if a.cfg.Demo != nil {
		d.DemoRate = a.cfg.Demo.Rate()
	}
	return d
}

// event records something the operator did or should see (newest first).
func (a *Adapter) event(kind string, lv pipeline.Level, format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addEventLocked(pipeline.Event{Time: time.Now(), Source: pipeline.SourceConsole, Kind: kind, Level: lv, Message: fmt.Sprintf(format, args...)})
}

const maxEvents = 200

// addEventLocked keeps the event (newest first) in both forms. Each add
// builds new slices: the renderer may still hold the previous ones.
func (a *Adapter) addEventLocked(e pipeline.Event) {
	n := min(len(a.events), maxEvents-1)
	ev := make([]pipeline.Event, 0, n+1)
	ev = append(ev, e)
	a.events = append(ev, a.events[:n]...)
	shown := make([]tui.Event, 0, n+1)
	shown = append(shown, tui.Event{T: e.Time, Kind: e.Kind, Level: tui.Level(e.Level), Text: e.Message})
	a.shown = append(shown, a.shown[:n]...)
	lvl := slog.LevelInfo
	switch e.Level {
	case pipeline.Warn:
		lvl = slog.LevelWarn
	case pipeline.Error:
		lvl = slog.LevelError
	}
	a.cfg.Logger.Log(context.Background(), lvl, e.Message, "source", e.Source, "kind", e.Kind)
}

// push appends to a history without touching the slice the renderer may
// hold: a new backing array each time (600 samples, once a second).
func push[T any](h []T, v T) []T {
	n := min(len(h), History-1)
	out := make([]T, 0, n+1)
	out = append(out, h[len(h)-n:]...)
	return append(out, v)
}

func (a *Adapter) onKafka(s *cluster.Snapshot, err error) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if a.d.Kafka.Err != msg {
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceKafka, Kind: pipeline.KindError, Level: pipeline.Error, Message: "kafka: " + msg})
		}
		a.d.Kafka.Err = msg
		return
	}
	a.d.Kafka.Err = ""
	k := tui.KafkaData{At: s.Time, TotalLag: s.TotalLag, NoCommitLag: s.TotalLag - s.CommittedLag, Partitions: make([]tui.Partition, len(s.Partitions))}
	var in, out float64
	rates := make([]float64, len(s.Partitions))
	lags := make([]float64, len(s.Partitions))
	for i, p := range s.Partitions {
		k.Partitions[i] = tui.Partition{ID: p.Partition, Lag: p.Lag, LagSeconds: p.LagSeconds, ProduceRate: p.ProduceRate,
			ConsumeRate: p.ConsumeRate, Owner: p.Member, Status: p.Status.String(), NoCommit: p.LagBasis == cluster.LagNoCommit && p.Lag > 0}
		if p.LagSeconds > k.MaxLagSeconds {
			k.MaxLagSeconds = p.LagSeconds
		}
		in += p.ProduceRate
		out += p.ConsumeRate
		rates[i] = p.ProduceRate
		lags[i] = float64(max(p.Lag, 0))
	}
	a.lag = push(a.lag, float64(s.TotalLag))
	k.LagTrend = a.lag
	a.d.Kafka = k
	a.in = push(a.in, tui.Sample{T: s.Time, V: in})
	a.d.Flow.In = a.in
	if a.cfg.Fleet == nil && (a.cfg.NoWorker || !a.hasPoolLocked()) {
		// Without a local worker or the fleet's telemetry, "out" is what
		// the group commits.
		a.out = push(a.out, tui.Sample{T: s.Time, V: out})
		a.d.Flow.Out = a.out
	}
	a.d.Flow.At = s.Time
	h := &a.d.Header
	h.GroupState, h.Health = s.GroupState, s.Status.String()
	h.Rebalance, h.RebalanceAtLeast, h.Notice = 0, false, ""
	if rb := s.Rebalance; rb != nil {
		h.Rebalance, h.RebalanceAtLeast = time.Duration(rb.Seconds*float64(time.Second)), rb.AtLeast
	}
	for _, w := range s.Warnings {
		if headerWarning[w.Code] {
			h.Notice = w.Message // the first is the most severe
			break
		}
	}
	sk := &a.d.Workers.Skew
	sk.RatePeakToAvg, sk.RateCV = tui.Skewness(rates)
	sk.LagPeakToAvg, sk.LagCV = tui.Skewness(lags)
	a.mergeMembersLocked(s)

	// Events from changes between refreshes.
	ps := &a.parts
	if ps.groupState != "" && ps.groupState != s.GroupState {
		msg := fmt.Sprintf("group %s: %s -> %s", s.Group, ps.groupState, s.GroupState)
		if rb := ps.rebalance; rb != nil && s.Rebalance == nil {
			at := ""
			if rb.AtLeast {
				at = "at least "
			}
			msg += fmt.Sprintf(" after rebalancing for %s%s", at, (time.Duration(rb.Seconds * float64(time.Second))).Round(time.Second))
		}
		a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceKafka, Kind: pipeline.KindRebalance, Level: pipeline.Info, Message: msg})
	}
	// Each warning is an event when it starts (its message changes every
	// refresh, e.g. a rebalance's duration; its code does not).
	seen := make(map[string]bool, len(s.Warnings))
	for _, w := range s.Warnings {
		seen[w.Code] = true
		if ps.warnings[w.Code] {
			continue
		}
		kind, lv := pipeline.KindLag, pipeline.Warn
		switch w.Code {
		case cluster.WarnRebalancing:
			kind = pipeline.KindRebalance
		case cluster.WarnGroupNotFound:
			lv = pipeline.Error
		}
		a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceKafka, Kind: kind, Level: lv, Message: w.Message})
	}
	ps.warnings, ps.rebalance = seen, s.Rebalance
	if ps.health != "" && ps.health != s.Status.String() {
		lv := pipeline.Info
		if s.Status.String() != "OK" {
			lv = pipeline.Warn
		}
		a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceKafka, Kind: pipeline.KindLag, Level: lv, Message: fmt.Sprintf("group health %s -> %s (total lag %d)", ps.health, s.Status, s.TotalLag)})
	}
	if ps.groupState != "" && ps.members != len(s.Members) {
		a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceKafka, Kind: pipeline.KindRebalance, Level: pipeline.Info, Message: fmt.Sprintf("group members %d -> %d", ps.members, len(s.Members))})
	}
	ps.groupState, ps.health, ps.members = s.GroupState, s.Status.String(), len(s.Members)
	a.last = s
	a.advice.window = push(a.advice.window, s)
	if len(a.advice.window) > adviceWindow {
		a.advice.window = a.advice.window[len(a.advice.window)-adviceWindow:]
	}
	a.adviseLocked(now)
}

// headerWarning are the warnings that earn the header's notice line. The
// others (backlog on partitions not yet committed, figures not read) show
// in the lag table and the event log, and come and go with every
// rebalance: a header line that flickers moves the whole screen.
var headerWarning = map[string]bool{
	cluster.WarnGroupNotFound: true,
	cluster.WarnNoConsumer:    true,
	cluster.WarnRebalancing:   true,
	cluster.WarnResetLatest:   true,
}

// mergeMembersLocked shows the group's members from Kafka's point of view;
// local members get their rates from the worker pool when there is one.
func (a *Adapter) mergeMembersLocked(s *cluster.Snapshot) {
	local := a.localMembersLocked()
	ms := make([]tui.Member, 0, len(s.Members))
	remote := 0
	for _, m := range s.Members {
		tm := tui.Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.Host, Partitions: m.Partitions}
		if lm, ok := local[m.MemberID]; ok {
			tm.Local, tm.InRate, tm.OutRate, tm.InFlight, tm.Batch = true, lm.InRate, lm.OutRate, lm.InFlight, lm.Batch
		} else {
			remote++
		}
		ms = append(ms, tm)
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Local && !ms[j].Local })
	a.d.Workers.Members = ms
	a.d.Workers.At = s.Time
	a.d.Header.RemoteMembers = remote
}
