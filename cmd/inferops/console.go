package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/perf"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/rollout"
	"github.com/inferops/inferops/tui"
	"github.com/inferops/inferops/tui/live"
)

const consoleHelp = `Opens the live console. Without --brokers everything runs in this process:
the embedded Kafka broker (data kept in --data-dir), the model server, a demo
traffic generator and the inference worker with --workers members. With
--brokers and --tfserving it attaches to real clusters and runs the worker
there; --no-worker runs none here.
Either way the console shows and steers the whole fleet: every worker pool of
--group on every host (each 'inferops worker', each console's own pool)
through --fleet-topic and --control-topic. + and - change the fleet's total
(or, in the workers panel, the selected instance's), v its target version,
space pauses it; attached, each asks y/n first. --read-only never writes:
no worker, no fleet changes, no perf runs.
Keys: ? shows them all. q drains the worker and quits. The console logs to
console.log in the state dir, never to the screen.`

// consoleCmd is `inferops console`: everything its flags say.
type consoleCmd struct {
	f        *cmdFlags
	kafka    *cluster.Config
	tfs      *tfserving.Config
	embedded *embeddedFlags
	records  *recordFlags
	input    string
	output   string
	dlq      string
	group    string
	model    string
	workers  int
	instance string
	fleet    *fleetFlags
	readOnly bool
	noWorker bool
	demoRate float64
	refresh  time.Duration
	slo      time.Duration
	perfDur  time.Duration
	perfRate float64
	metrics  string // --tfserving-metrics
	// The plan the version menu's "roll out gradually" starts.
	rollSteps   string
	rollHold    time.Duration
	rollSamples int
}

func consoleCommand() (*cmdFlags, runFunc) {
	f := newFlags("console", "console [flags]", consoleHelp)
	c := &consoleCmd{f: f, kafka: addKafkaFlags(f), tfs: addTFServingFlags(f, "the embedded model server this console starts"), embedded: addEmbeddedFlags(f)}
	addPipelineFlags(f, pipelineNames{Input: &c.input, Output: &c.output, DLQ: &c.dlq, Group: &c.group, Model: &c.model})
	addWorkerFlags(f, workerTuning{Workers: &c.workers})
	c.records = addRecordFlags(f, true)
	addInstanceFlag(f, &c.instance, "<host>-console ("+worker.HostInstance()+"-console), so it never collides with a headless worker on this host")
	c.fleet = addFleetFlags(f, true)
	addServerMetricsFlag(f, &c.metrics, "the embedded model server's page when this console starts it; else not read")
	f.BoolVar(&c.readOnly, "read-only", false, "observe only: no worker, no scaling, version switches or perf runs")
	f.BoolVar(&c.noWorker, "no-worker", false, "watch the group without consuming (triage without touching it)")
	f.Float64Var(&c.demoRate, "demo-rate", 500, "embedded mode: demo traffic in msg/s before bursts; [ and ] change it live")
	f.DurationVar(&c.refresh, "refresh", time.Second, "how often the screen's data is refreshed")
	f.DurationVar(&c.slo, "slo", 50*time.Millisecond, "end-to-end p99 the console flags as a breach")
	f.DurationVar(&c.perfDur, "perf-duration", 0, "how long a perf run started with p sends; 0 = the scenario's own (30s)")
	f.Float64Var(&c.perfRate, "perf-rate", 0, "target msg/s of a perf run started with p; 0 = the scenario's (the seed's 55,000/45,000/32,000)")
	f.StringVar(&c.rollSteps, "rollout-steps", rollout.DefaultSteps, "the plan v's \"roll out gradually\" starts: percent of records per step (see inferops rollout --help)")
	f.DurationVar(&c.rollHold, "rollout-hold", rollout.DefaultHold, "how long that rollout holds each step")
	f.IntVar(&c.rollSamples, "rollout-min-samples", rollout.DefaultMinSamples, "candidate rows in the 10 s window before its gates judge (light traffic needs fewer, or a larger first step)")
	f.commandLineOnly("a rollout plan is an operator's choice at the console, never a config file's", "rollout-steps", "rollout-hold", "rollout-min-samples")
	return f, c.run
}

// validate names the flag to fix.
func (c *consoleCmd) validate() error {
	switch {
	case c.workers < 0:
		return fmt.Errorf("--workers %d: want 0 or more (0 starts paused)", c.workers)
	case c.demoRate < 0 || c.demoRate > demo.MaxRate:
		return fmt.Errorf("--demo-rate %.0f: want 0..%d msg/s", c.demoRate, demo.MaxRate)
	case c.refresh < 200*time.Millisecond || c.refresh > time.Minute:
		return fmt.Errorf("--refresh %s: want 200ms..1m", c.refresh)
	case c.perfRate < 0:
		return fmt.Errorf("--perf-rate %.0f: want 0 (the scenario's) or more", c.perfRate)
	case c.perfDur < 0 || c.perfDur > time.Hour:
		return fmt.Errorf("--perf-duration %s: want 0 (the scenario's) up to 1h", c.perfDur)
	case c.rolloutOptions().Validate() != nil:
		return fmt.Errorf("the console's rollout plan (--rollout-steps, --rollout-hold, --rollout-min-samples): %v", c.rolloutOptions().Validate())
	case len(c.kafka.Brokers) > 0 && c.tfs.Address == "" && !c.noWorker:
		return errors.New("--brokers without --tfserving: give the TF Serving address the worker should call (or --no-worker to only watch)")
	case len(c.kafka.Brokers) == 0 && !c.embedded.broker:
		return errors.New("no --brokers and the embedded broker is switched off (--broker=false)")
	}
	for flagName, v := range map[string]string{"--input": c.input, "--output": c.output, "--dlq": c.dlq, "--group": c.group, "--model": c.model} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is empty", flagName)
		}
	}
	return nil
}

func (c *consoleCmd) run(ctx context.Context, std stdio) error {
	if c.readOnly {
		c.noWorker = true
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if !term.IsTerminal(os.Stdout.Fd()) || !term.IsTerminal(os.Stdin.Fd()) {
		return fmt.Errorf("%w: the console needs a terminal; for scripts use 'inferops status --json' or 'inferops worker'", errUsage)
	}
	dataDir := c.embedded.dataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	log, closeLog, err := openConsoleLog(dataDir)
	if err != nil {
		return err
	}
	defer closeLog()
	limitMemory()
	return c.console(ctx, std, dataDir, log)
}

// openConsoleLog opens <data-dir>/console.log: the console's stderr is the
// screen.
func openConsoleLog(dataDir string) (*slog.Logger, func() error, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("--data-dir %s: %v", dataDir, err)
	}
	path := logging.ConsoleFile(dataDir)
	lf, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("console log %s: %v (set --data-dir to a writable directory)", path, err)
	}
	log, _, err := logging.New(logging.Options{Format: "json", Writer: lf})
	if err != nil {
		_ = lf.Close()
		return nil, nil, err
	}
	return log, lf.Close, nil
}

// console starts what the mode needs, runs the screen, then stops
// everything in reverse order, draining the worker before the stack.
func (c *consoleCmd) console(ctx context.Context, std stdio, dataDir string, log *slog.Logger) error {
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	embedded := len(c.kafka.Brokers) == 0
	st, err := c.startEmbedded(ctx, dataDir, log)
	if err != nil {
		return err
	}
	kc, tcfg := *c.kafka, *c.tfs
	if st != nil {
		stops = append(stops, func() {
			if err := st.Close(); err != nil {
				log.Error("stop the embedded stack", "err", err)
			}
		})
		if st.Broker != nil {
			kc.Brokers = []string{st.Addrs.Kafka}
		}
		if st.Models != nil {
			tcfg = tfserving.Config{Address: st.Addrs.GRPC}
		}
	}
	kc.SetDefaults()
	mode := "attached"
	if embedded {
		mode = "embedded"
	}
	log.Info("console starting", "mode", mode, "brokers", kc.Brokers, "tfserving", tcfg.Address)

	col, err := cluster.NewCollector(kc, c.input, c.group)
	if err != nil {
		return fmt.Errorf("watch %s/%s: %w", c.input, c.group, err)
	}
	stops = append(stops, func() { _ = col.Close() })
	// The DLQ panel reads the topic itself, so it shows dead letters from
	// workers in other processes too.
	dlq, err := cluster.NewDLQReader(kc, c.dlq)
	if err != nil {
		return fmt.Errorf("read %s: %w", c.dlq, err)
	}
	stops = append(stops, func() { _ = dlq.Close() })
	w, err := c.startWorker(ctx, kc, tcfg, log)
	if err != nil {
		return err
	}
	stops = append(stops, func() { w.drain(std) })
	// After the pool: its agent has created the fleet topics, and the
	// first view already has this console's own instance.
	ctl, fleetErr := c.openFleet(ctx, kc, log)
	// The console's one controller: the fleet view and keys, and the
	// operator actions' fleet events and fleet stops (it opens its own
	// only when this one could not be).
	fops := &fleetOps{kc: kc, topics: c.fleet.topics, group: c.group, input: c.input, ctl: ctl}
	stops = append(stops, fops.close)
	restAddr := ""
	if st != nil && st.Models != nil {
		restAddr = st.Addrs.REST
	}
	var gen *demo.Generator
	if embedded && c.demoRate > 0 && w.schema != nil && !c.readOnly { // read-only never produces
		gen, err = demo.Start(ctx, demo.Config{Kafka: kc, Topic: c.input, Rate: c.demoRate, Schema: w.schema, Logger: log.With("part", "demo")})
		if err != nil {
			return err
		}
		stops = append(stops, func() { _ = gen.Close() })
	}
	lc := c.liveConfig(mode, dataDir, kc, tcfg.Address, col, dlq, gen, w, log)
	lc.Fleet, lc.FleetErr = ctl, fleetErr
	if url := serverMetricsURL(c.metrics, restAddr != "", restAddr); url != "" {
		lc.ServerMetrics = tfserving.NewMetricsWatcher(url, c.model, c.refresh, log.With("part", "tfserving-metrics"))
	} else {
		lc.ServerMetricsErr = "not read (set --tfserving-metrics to TF Serving's http://HOST:8501" + pipeline.TFServingMetricsPath + ")"
	}
	// Replays and resets from the console are fleet events, and a reset
	// can stop the whole fleet as --stop-fleet does.
	if !c.readOnly {
		lc.Ops.Publish = fops.publish
		lc.Ops.StopFleet = func(ctx context.Context, why string) (func(context.Context) error, error) {
			return fops.stop(ctx, why, time.Minute, func(s string) { log.Info(s) })
		}
	}
	ad, err := live.New(lc)
	if err != nil {
		return err
	}
	actx, stopAdapter := context.WithCancel(ctx)
	ad.Run(actx)
	stops = append(stops, func() { stopAdapter(); ad.Wait() })

	m, err := tui.New(tui.Options{Backend: ad, Refresh: c.refresh, NoColor: os.Getenv("NO_COLOR") != "", Logger: log})
	if err != nil {
		return err
	}
	_, err = tea.NewProgram(m, tea.WithContext(ctx)).Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, tea.ErrInterrupted) || ctx.Err() != nil {
		err = nil // a signal is a normal way to quit
	}
	log.Info("console quitting")
	return err
}

// openFleet follows the group's fleet for the workers panel and the keys.
// A console that may not write the fleet's topics (no WRITE or CREATE ACL)
// still shows the fleet, read-only, saying why; one that cannot read them
// shows Kafka's members and the reason (the error string).
func (c *consoleCmd) openFleet(ctx context.Context, kc cluster.Config, log *slog.Logger) (*fleet.Controller, string) {
	cfg := fleet.ControllerConfig{Kafka: kc, Topics: c.fleet.topics, Group: c.group, Input: c.input, Logger: log.With("part", "fleet")}
	if c.readOnly {
		cfg.ReadOnly = "--read-only"
	}
	open := func(cfg fleet.ControllerConfig) (*fleet.Controller, error) {
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return fleet.Open(octx, cfg)
	}
	ctl, err := open(cfg)
	if err != nil && cfg.ReadOnly == "" && ctx.Err() == nil {
		log.Warn("the fleet cannot be steered from here; reading it only", "err", err)
		cfg.ReadOnly = "cannot write the fleet's topics: " + err.Error()
		ctl, err = open(cfg)
	}
	if err != nil {
		log.Warn("the fleet is not readable", "err", err)
		return nil, err.Error()
	}
	return ctl, ""
}

// startEmbedded starts the embedded parts whose real counterpart the
// operator did not name: the broker without --brokers, the model server
// without --tfserving. It returns nil when neither runs.
func (c *consoleCmd) startEmbedded(ctx context.Context, dataDir string, log *slog.Logger) (*stack.Stack, error) {
	e := *c.embedded
	e.broker = e.broker && len(c.kafka.Brokers) == 0
	e.models = e.models && c.tfs.Address == ""
	if !e.broker && !e.models {
		return nil, nil
	}
	sc, err := e.stackConfig(dataDir, log)
	if err != nil {
		return nil, err
	}
	return stack.Start(ctx, sc)
}

// liveConfig is what the screen's adapter reads from.
func (c *consoleCmd) liveConfig(mode, dataDir string, kc cluster.Config, tfsAddr string, col *cluster.Collector, dlq *cluster.DLQReader, gen *demo.Generator, w *consoleWorker, log *slog.Logger) live.Config {
	readOnly := ""
	if c.readOnly {
		readOnly = "--read-only"
	}
	lc := live.Config{
		Collector: col, DLQReader: dlq, Demo: gen, TFS: w.tfs, Pool: w.pool, Instance: w.instance, Logger: log, Mode: mode, Brokers: kc.Brokers, ReadOnly: readOnly,
		NoWorker: c.noWorker, Input: c.input, Output: c.output, DLQ: c.dlq, Group: c.group,
		Model: c.model, TFServing: tfsAddr, SLO: c.slo, Interval: c.refresh,
		// The export key (e) writes triage reports next to the rest of the
		// state; the SASL password is cut out even if it leaks into an error.
		ReportDir: filepath.Join(dataDir, "reports"), ReportConfig: c.f.reportConfig(),
		Secrets: []string{kc.SASL.Password}, Version: version,
		Ops:     live.OpsConfig{Kafka: kc, By: fleet.Operator()}, // Publish, StopFleet: run
		Rollout: c.rolloutOptions(),
	}
	if mode == "embedded" && c.tfs.Address == "" && c.shippedModel() {
		// GetModelStatus cannot report labels; the shipped model's are known.
		lc.Labels = map[int64][]string{}
		for label, v := range model.Labels {
			lc.Labels[v] = append(lc.Labels[v], label)
		}
	}
	if w.tfs != nil && !c.readOnly {
		// Perf runs use their own topics and worker group against the same
		// TF Serving, so they never feed the production output.
		lc.Perf = &live.PerfRunner{Duration: c.perfDur, Rate: c.perfRate, Base: perf.Options{
			Kafka: kc, TFServing: w.tfs, Model: c.model, Embedded: mode == "embedded",
			HistoryPath: filepath.Join(dataDir, perf.HistoryFile), Logger: log.With("part", "perf"),
		}}
	}
	return lc
}

// rolloutOptions is the console's rollout plan: the defaults with the
// --rollout-* flags.
func (c *consoleCmd) rolloutOptions() rollout.Options {
	o := rollout.DefaultOptions()
	o.Steps, o.Hold, o.MinSamples = c.rollSteps, c.rollHold, c.rollSamples
	return o
}

// shippedModel reports whether the embedded model server serves the shipped
// my_model (both versions, labelled stable and canary: see model.Labels),
// i.e. the operator gave none of the model flags.
func (c *consoleCmd) shippedModel() bool {
	for _, name := range []string{"model-config-file", "model-base-path", "model-name", "model-server"} {
		if c.f.origin(name).Source == config.SourceFlag || os.Getenv(config.EnvName(name)) != "" {
			return false
		}
	}
	return true
}
