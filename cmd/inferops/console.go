package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/perf"
	"github.com/inferops/inferops/internal/paths"
	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
	"github.com/inferops/inferops/tui/live"
)

func init() {
	register(&command{name: "console", summary: "the live pipeline console (default): lag, throughput, latency, models, workers, perf", run: runConsole})
}

const consoleHelp = `Opens the live console. Without --brokers everything runs in this process:
the embedded Kafka broker (data kept in --data-dir), the model server, a demo
traffic generator and the inference worker. With --brokers and --tfserving it
attaches to real clusters and runs the worker there (--no-worker only
watches; --read-only also disables scaling, version switches and perf runs).
Keys: ? shows them all. q drains the worker and quits. The console logs to
console.log in the state dir, never to the screen.`

// consoleConfig is everything runConsole wires together.
type consoleConfig struct {
	Kafka     *cluster.Config
	TFServing string
	Model     string
	Input     string
	Output    string
	DLQ       string
	Group     string
	Workers   int
	ReadOnly  bool
	NoWorker  bool
	DemoRate  float64
	Refresh   time.Duration
	SLO       time.Duration
	PerfDur   time.Duration
	PerfRate  float64
	Env       serveEnv
	// DemoLabels: the embedded model server serves the shipped model, whose
	// labels (model.Labels) GetModelStatus cannot report.
	DemoLabels bool
	// Report is the effective configuration for the triage report (e).
	Report []report.Setting
}

// Validate names the flag to fix.
func (c *consoleConfig) Validate() error {
	switch {
	case c.Workers < 0:
		return fmt.Errorf("--workers %d: want 0 or more (0 starts paused)", c.Workers)
	case c.DemoRate < 0 || c.DemoRate > demo.MaxRate:
		return fmt.Errorf("--demo-rate %.0f: want 0..%d msg/s", c.DemoRate, demo.MaxRate)
	case c.Refresh < 200*time.Millisecond || c.Refresh > time.Minute:
		return fmt.Errorf("--refresh %s: want 200ms..1m", c.Refresh)
	case c.PerfRate < 0:
		return fmt.Errorf("--perf-rate %.0f: want 0 (the scenario's) or more", c.PerfRate)
	case c.PerfDur < 0 || c.PerfDur > time.Hour:
		return fmt.Errorf("--perf-duration %s: want 0 (the scenario's) up to 1h", c.PerfDur)
	case len(c.Kafka.Brokers) > 0 && c.TFServing == "" && !c.NoWorker:
		return errors.New("--brokers without --tfserving: give the TF Serving address the worker should call (or --no-worker to only watch)")
	}
	for flagName, v := range map[string]string{"--input": c.Input, "--output": c.Output, "--dlq": c.DLQ, "--group": c.Group, "--model": c.Model} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is empty", flagName)
		}
	}
	return nil
}

func runConsole(ctx context.Context, args []string) error {
	fs := newFlagSet("console", "console [flags]", consoleHelp)
	cfg := consoleConfig{Kafka: addKafkaFlags(fs)}
	fs.StringVar(&cfg.Env.DataDir, "data-dir", paths.StateDir(), "state dir: embedded broker data (kept on quit), console.log")
	fs.BoolVar(&cfg.Env.Ephemeral, "ephemeral", false, "keep the embedded broker in memory; nothing but console.log is written")
	parts := orderedServeParts()
	for _, p := range parts {
		if p.flags != nil {
			p.flags(fs)
		}
	}
	if fs.Lookup("tfserving") == nil {
		fs.StringVar(&cfg.TFServing, "tfserving", "", "TF Serving gRPC address host:port; empty = the embedded model server")
	}
	if fs.Lookup("model") == nil {
		fs.StringVar(&cfg.Model, "model", pipeline.DefaultModel, "model name")
	}
	fs.StringVar(&cfg.Input, "input", pipeline.DefaultInput, "input topic the worker consumes")
	fs.StringVar(&cfg.Output, "output", pipeline.DefaultOutput, "output topic for results")
	fs.StringVar(&cfg.DLQ, "dlq", pipeline.DefaultDLQ, "dead-letter topic for bad input")
	fs.StringVar(&cfg.Group, "group", pipeline.DefaultGroup, "consumer group of the workers")
	fs.IntVar(&cfg.Workers, "workers", 4, "local workers (group members) to start with; + and - change it live")
	fs.BoolVar(&cfg.ReadOnly, "read-only", false, "observe only: no worker, no scaling, version switches or perf runs")
	fs.BoolVar(&cfg.NoWorker, "no-worker", false, "watch the group without consuming (triage without touching it)")
	fs.Float64Var(&cfg.DemoRate, "demo-rate", 500, "embedded mode: demo traffic in msg/s before bursts; [ and ] change it live")
	fs.DurationVar(&cfg.Refresh, "refresh", time.Second, "how often the screen's data is refreshed")
	fs.DurationVar(&cfg.SLO, "slo", 50*time.Millisecond, "end-to-end p99 the console flags as a breach")
	fs.DurationVar(&cfg.PerfDur, "perf-duration", 0, "how long a perf run started with p sends; 0 = the scenario's own (30s)")
	fs.Float64Var(&cfg.PerfRate, "perf-rate", 0, "target msg/s of a perf run started with p; 0 = the scenario's (the seed's 55,000/45,000/32,000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f := fs.Lookup("tfserving"); f != nil {
		cfg.TFServing = f.Value.String()
	}
	if f := fs.Lookup("model"); f != nil {
		cfg.Model = f.Value.String()
	}
	if cfg.ReadOnly {
		cfg.NoWorker = true
	}
	cfg.Report = reportConfig(fs)
	if len(cfg.Kafka.Brokers) == 0 && cfg.TFServing == "" {
		cfg.DemoLabels = shippedModel(fs)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if !term.IsTerminal(os.Stdout.Fd()) || !term.IsTerminal(os.Stdin.Fd()) {
		return fmt.Errorf("%w: the console needs a terminal; for scripts use 'inferops status --json' or 'inferops worker'", errUsage)
	}
	return console(ctx, cfg, parts)
}

// shippedModel reports whether the embedded model server serves the shipped
// my_model (both versions, labelled stable and canary: see model.Labels),
// i.e. the operator gave none of the model flags.
func shippedModel(fs *flag.FlagSet) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "model-config-file", "model-base-path", "model-name", "model-server":
			given = true
		}
	})
	for _, name := range []string{"model-config-file", "model-base-path", "model-name", "model-server"} {
		if os.Getenv(envName(name)) != "" {
			given = true
		}
	}
	return !given
}

// console starts what the mode needs, runs the screen, then stops
// everything in reverse order, draining the worker last-in-first-out.
func console(ctx context.Context, cfg consoleConfig, parts []*servePart) (err error) {
	env := cfg.Env
	if abs, aerr := filepath.Abs(env.DataDir); aerr == nil {
		env.DataDir = abs
	}
	if mkErr := os.MkdirAll(env.DataDir, 0o750); mkErr != nil {
		return fmt.Errorf("--data-dir %s: %v", env.DataDir, mkErr)
	}
	logPath := filepath.Join(env.DataDir, "console.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("console log %s: %v (set --data-dir to a writable directory)", logPath, err)
	}
	defer lf.Close()
	log := slog.New(slog.NewJSONHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env.Log = log
	limitMemory()

	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	say := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "inferops: "+format+"\n", a...) }

	embedded := len(cfg.Kafka.Brokers) == 0
	mode := "attached"
	if embedded {
		mode = "embedded"
	}
	// The embedded parts are the ones `inferops serve` runs; the console
	// starts each one whose real counterpart was not given.
	for _, p := range parts {
		if (p.name == "broker" && !embedded) || (p.name != "broker" && cfg.TFServing != "") {
			continue
		}
		addrs, stop, perr := p.start(ctx, env)
		if perr != nil {
			return fmt.Errorf("start embedded %s: %w", p.name, perr)
		}
		if stop != nil {
			name := p.name
			stops = append(stops, func() {
				if err := stop(); err != nil {
					log.Error("stop embedded part", "part", name, "err", err)
				}
			})
		}
		for _, a := range addrs {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "kafka":
				cfg.Kafka.Brokers = []string{v}
			case "grpc":
				cfg.TFServing = v
			}
		}
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return fmt.Errorf("%w: no --brokers and the embedded broker is switched off (--broker=false)", errUsage)
	}
	cfg.Kafka.SetDefaults()
	log.Info("console starting", "mode", mode, "brokers", cfg.Kafka.Brokers, "tfserving", cfg.TFServing)

	col, err := cluster.NewCollector(*cfg.Kafka, cfg.Input, cfg.Group)
	if err != nil {
		return fmt.Errorf("watch %s/%s: %w", cfg.Input, cfg.Group, err)
	}
	stops = append(stops, func() { _ = col.Close() })

	w, err := startConsoleWorker(ctx, cfg, log)
	if err != nil {
		return err
	}
	stops = append(stops, func() {
		if w.pool != nil {
			say("draining the worker…")
		}
		dctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := w.stop(dctx); err != nil {
			say("drain: %v", err)
		}
	})

	var gen *demo.Generator
	if embedded && cfg.DemoRate > 0 && w.featureWidth > 0 && !cfg.ReadOnly { // read-only never produces
		gen, err = demo.Start(ctx, demo.Config{Kafka: *cfg.Kafka, Topic: cfg.Input, Rate: cfg.DemoRate, FeatureWidth: w.featureWidth, Logger: log.With("part", "demo")})
		if err != nil {
			return err
		}
		stops = append(stops, func() { _ = gen.Close() })
	}

	readOnly := ""
	if cfg.ReadOnly {
		readOnly = "--read-only"
	}
	lcfg := live.Config{
		Collector: col, Demo: gen, Logger: log, Mode: mode, Brokers: cfg.Kafka.Brokers, ReadOnly: readOnly,
		NoWorker: cfg.NoWorker, Input: cfg.Input, Output: cfg.Output, DLQ: cfg.DLQ, Group: cfg.Group,
		Model: cfg.Model, TFServing: cfg.TFServing, SLO: cfg.SLO, Interval: cfg.Refresh,
		// The export key (e) writes triage reports next to the rest of the
		// state; the SASL password is cut out even if it leaks into an error.
		ReportDir: filepath.Join(env.DataDir, "reports"), ReportConfig: cfg.Report,
		Secrets: []string{cfg.Kafka.SASL.Password}, Version: version,
	}
	if cfg.DemoLabels {
		lcfg.Labels = map[int64][]string{}
		for label, v := range model.Labels {
			lcfg.Labels[v] = append(lcfg.Labels[v], label)
		}
	}
	w.attach(&lcfg)
	if w.tfs != nil && !cfg.ReadOnly {
		// Perf runs use their own topics and worker group against the same
		// TF Serving, so they never feed the production output.
		lcfg.Perf = &live.PerfRunner{Duration: cfg.PerfDur, Rate: cfg.PerfRate, Base: perf.Options{
			Kafka: *cfg.Kafka, TFServing: w.tfs, Model: cfg.Model, Embedded: embedded,
			HistoryPath: filepath.Join(env.DataDir, perf.HistoryFile), Logger: log.With("part", "perf"),
		}}
	}
	ad, err := live.New(lcfg)
	if err != nil {
		return err
	}
	actx, stopAdapter := context.WithCancel(ctx)
	ad.Run(actx)
	stops = append(stops, func() { stopAdapter(); ad.Wait() })

	m, err := tui.New(tui.Options{Backend: ad, Refresh: cfg.Refresh, NoColor: os.Getenv("NO_COLOR") != "", Logger: log})
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
