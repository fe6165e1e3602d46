package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/perf"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/internal/logging"
	"github.com/inferops/inferops/internal/paths"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
)

const perfHelp = `Sends open-loop load through the real pipeline (Kafka -> inference worker ->
TF Serving -> Kafka) and reports, per scenario, the achieved Kafka throughput,
TF QPS, end-to-end latency (avg, p50, p95, p99, p99.9, max), lost records and
PASS/FAIL against the SLO (p99 within the SLO, nothing lost, the target rate
actually offered).

Scenarios (the seed's): small = 100 streams, 2 KB records, SLO 50 ms,
55,000 msg/s; medium = 500 streams, 5 KB, 100 ms, 45,000 msg/s; high = 2000
streams, 10 KB, 200 ms, 32,000 msg/s. --rate and --duration change the load of
a named scenario; --streams, --payload-bytes or --slo make it "custom".

Latency is measured from each record's scheduled send time, so a stalled
pipeline shows as the delay it causes (no coordinated omission). Before the
clock starts, a probe must come back from every input partition
(--warmup-timeout) and the load runs unmeasured for --ramp. Records not
answered within --drain-timeout after the last send are lost; records the
worker dead-letters count as errors.

Safety: records go to ai_input.perf and results to ai_output.perf (created if
missing), served by a perf worker in this process (group inferops_perf)
against the same TF Serving; production consumers never see them. --topic,
--output, --dlq and --group are read from the command line only, never from
INFEROPS_* variables or the config file, which describe the production
pipeline. --topic targets another input topic instead (the production
workers then serve it and their results go to --output).

Without --brokers it starts its own embedded broker and model server in a
temporary directory, removed afterwards; with --brokers it needs --tfserving.
Every run is appended to the history (--history) and compared with the
previous run of the same scenario.

Exit status:
  0  every scenario PASSed
  1  a scenario's verdict is FAIL (p99 over the SLO, records lost, or the
     target rate not offered); the table says which. A pipeline that never
     answered the warm-up probes is measured all the same and FAILs: its
     records are lost, which is a verdict on the pipeline, not on perf
  2  usage: a flag is wrong
  3  the run could not be carried out: Kafka or TF Serving unreachable,
     the embedded stack or the perf worker would not start, or perf was
     interrupted (SIGINT, SIGTERM); what did run is printed first, and no
     verdict should be drawn from it`

// perfCmd is `inferops perf`: the parsed command line.
type perfCmd struct {
	kafka        *cluster.Config
	tfs          *tfserving.Config
	scenario     string
	streams      int
	payload      int
	rate         float64
	duration     time.Duration
	slo          time.Duration
	jsonOut      bool
	findMax      bool
	findMaxSteps int
	drain        time.Duration
	warmup       time.Duration
	ramp         time.Duration
	noRamp       bool
	topic        string
	output       string
	dlq          string
	group        string
	model        string
	records      *recordFlags
	target       string
	workers      int
	maxBatch     int
	batchTimeout time.Duration
	producers    int
	compression  string
	history      string
	inject       time.Duration
}

func perfCommand() (*cmdFlags, runFunc) {
	f := newFlags("perf", "perf [--scenario small|medium|high|all|custom] [--duration 30s] [--json] [--find-max] [flags]", perfHelp)
	c := &perfCmd{kafka: addKafkaFlags(f), tfs: addTFServingFlags(f, "an embedded model server of its own (only without --brokers)")}
	f.StringVar(&c.scenario, "scenario", perf.Small, "small, medium, high, all (the three in turn) or custom")
	f.IntVar(&c.streams, "streams", 0, "concurrent producer streams sharing the rate (custom; overrides the scenario's)")
	f.IntVar(&c.payload, "payload-bytes", 0, "record size in bytes (custom; overrides the scenario's)")
	f.Float64Var(&c.rate, "rate", 0, "target send rate in msg/s; 0 = the scenario's (the seed's measured Kafka throughput)")
	f.DurationVar(&c.duration, "duration", 0, "how long to send; 0 = 30s (10s per step with --find-max)")
	f.DurationVar(&c.slo, "slo", 0, "end-to-end p99 latency SLO (custom; overrides the scenario's)")
	f.BoolVar(&c.jsonOut, "json", false, "print only JSON on stdout: one object per scenario, an array for --scenario all")
	f.BoolVar(&c.findMax, "find-max", false, "search (bounded steps of --duration) for the highest rate that still meets the SLO")
	f.IntVar(&c.findMaxSteps, "find-max-steps", perf.DefaultFindMaxSteps, "most runs --find-max makes per scenario")
	f.DurationVar(&c.drain, "drain-timeout", perf.DefaultDrainTimeout, "how long to wait for results after the last send; later ones count as lost")
	f.DurationVar(&c.ramp, "ramp", 0, "send at the target rate this long before measuring; 0 = a fifth of --duration within 1-5s")
	f.BoolVar(&c.noRamp, "no-ramp", false, "measure from the first record (a cold pipeline's first second counts)")
	f.DurationVar(&c.warmup, "warmup-timeout", perf.DefaultWarmupTimeout, "how long to wait for the pipeline to answer a probe on every partition before timing starts")
	// Perf's own topics and group, not the pipeline's: these four are the
	// one place where a perf run could reach production.
	f.StringVar(&c.topic, "topic", perf.DefaultInput, "input topic to load; anything but "+perf.DefaultInput+" is served by whatever consumes it")
	f.StringVar(&c.output, "output", "", "where results of --topic appear (default ai_output; "+perf.DefaultOutput+" for the perf topic)")
	f.StringVar(&c.dlq, "dlq", "", "dead-letter topic of the perf worker (default "+perf.DefaultDLQ+")")
	f.StringVar(&c.group, "group", perf.DefaultGroup, "consumer group of the perf worker (never the production group)")
	f.commandLineOnly("perf only leaves its own topics and group when told so on the command line", "topic", "output", "dlq", "group")
	addPipelineFlags(f, pipelineNames{Model: &c.model})
	c.records = addRecordFlags(f, false)
	f.StringVar(&c.target, "target-version", "latest", "model version the perf worker calls: latest, 2, v2, label:stable")
	addWorkerFlags(f, workerTuning{Workers: &c.workers, MaxBatch: &c.maxBatch, BatchTimeout: &c.batchTimeout})
	f.IntVar(&c.producers, "producers", perf.DefaultProducers, "sarama producers the streams share; 0 = one per 20,000 msg/s of target rate (1 to 4)")
	f.StringVar(&c.compression, "compression", pipeline.DefaultCompression, "producer compression: zstd (the seed's), lz4, snappy, gzip, none")
	f.StringVar(&c.history, "history", filepath.Join(paths.StateDir(), perf.HistoryFile), "history file (JSON lines); empty = keep none")
	f.DurationVar(&c.inject, "inject-latency", 0, "embedded model server only: add this delay to every Predict (to see a slow model fail its SLO)")
	return f, c.run
}

func (c *perfCmd) run(ctx context.Context, std stdio) error {
	scenarios, target, err := c.check()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log, _, err := logging.New(logging.Options{Format: "text", Level: "warn", Writer: std.err})
	if err != nil {
		return &exitError{exitNotRun, err}
	}
	embedded := len(c.kafka.Brokers) == 0
	kc, tcfg, stop, err := c.targets(ctx, std, log)
	if err != nil {
		return &exitError{exitNotRun, err}
	}
	defer stop()
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	tcfg.Model = c.model
	tfs, err := tfserving.Dial(tcfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer tfs.Close()

	base := c.options(kc, tfs, target, embedded, log)
	if base.Records, err = c.records.schemaOptions(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if base.NoWorker {
		out := c.output
		if out == "" {
			out = pipeline.DefaultOutput
		}
		fmt.Fprintf(std.err, "\n*** inferops perf: WRITING PERF RECORDS INTO %q (--topic), NOT %s ***\n*** whatever consumes %s will process them and write results to %s, where downstream applications see them ***\n\n", c.topic, perf.DefaultInput, c.topic, out)
	}
	previous := c.previousRuns(std)
	results, failed, runErr := c.runScenarios(ctx, std, base, scenarios)
	if errors.Is(runErr, errUsage) {
		return runErr
	}
	if len(results) > 0 || runErr == nil {
		if err := c.print(std.out, results, previous, embedded); err != nil {
			return err
		}
	}
	switch {
	case runErr != nil && len(results) > 0:
		return &exitError{exitNotRun, fmt.Errorf("%w (the figures above cover the scenarios that ran)", runErr)}
	case runErr != nil:
		return &exitError{exitNotRun, runErr}
	case ctx.Err() != nil:
		return &exitError{exitNotRun, errors.New("interrupted: the figures above cover the part that ran, no verdict")}
	case len(failed) > 0:
		return &exitError{exitFailed, fmt.Errorf("FAIL: %s (see the table: p99 over the SLO, lost records or the target rate not reached)", strings.Join(failed, ", "))}
	}
	return nil
}

// options are what every scenario of the run shares.
func (c *perfCmd) options(kc cluster.Config, tfs *tfserving.Client, target tfserving.Target, embedded bool, log *slog.Logger) perf.Options {
	return perf.Options{
		Kafka: kc, TFServing: tfs, Model: c.model, Target: target,
		Input: c.topic, Output: c.output, DLQ: c.dlq, Group: c.group, NoWorker: c.topic != perf.DefaultInput,
		Workers: c.workers, MaxBatch: c.maxBatch, BatchTimeout: c.batchTimeout,
		Producers: c.producers, Compression: c.compression,
		DrainTimeout: c.drain, WarmupTimeout: c.warmup, Ramp: c.ramp, NoRamp: c.noRamp,
		FindMax: c.findMax, FindMaxSteps: c.findMaxSteps, FindMaxStepDuration: c.duration,
		HistoryPath: c.history, Embedded: embedded, Logger: log,
	}
}

// previousRuns are the last runs of each scenario from --history, to
// compare with; an unreadable history only loses the comparison.
func (c *perfCmd) previousRuns(std stdio) map[string]perf.Result {
	if c.history == "" {
		return map[string]perf.Result{}
	}
	previous, err := perf.LastRuns(c.history)
	if err != nil {
		fmt.Fprintf(std.err, "inferops perf: %v (continuing without comparison)\n", err)
		return map[string]perf.Result{}
	}
	return previous
}

// check turns the flags into the scenarios and the target version, naming
// the flag behind each mistake.
func (c *perfCmd) check() ([]perf.Scenario, tfserving.Target, error) {
	scenarios, err := c.scenarios()
	if err != nil {
		return nil, tfserving.Target{}, err
	}
	target, err := tfserving.ParseTarget(c.target)
	switch {
	case err != nil:
		return nil, tfserving.Target{}, fmt.Errorf("--target-version: %v", err)
	case c.inject < 0:
		return nil, tfserving.Target{}, fmt.Errorf("--inject-latency %v is negative", c.inject)
	case len(c.kafka.Brokers) > 0 && c.tfs.Address == "":
		return nil, tfserving.Target{}, errors.New("--brokers without --tfserving: give the TF Serving the perf worker should call (perf starts its own model server only together with its own broker)")
	case c.inject > 0 && c.tfs.Address != "":
		return nil, tfserving.Target{}, errors.New("--inject-latency works on the embedded model server only (drop --tfserving)")
	case c.topic == "":
		return nil, tfserving.Target{}, errors.New("--topic is empty")
	}
	return scenarios, target, nil
}

// targets are the Kafka cluster and TF Serving the run uses: the flags',
// with perf's own embedded broker and/or model server for what they leave
// empty. stop stops those.
func (c *perfCmd) targets(ctx context.Context, std stdio, log *slog.Logger) (cluster.Config, tfserving.Config, func(), error) {
	kc, tcfg := *c.kafka, *c.tfs
	broker, models := len(kc.Brokers) == 0, tcfg.Address == ""
	if !broker && !models {
		return kc, tcfg, func() {}, nil
	}
	st, dir, err := c.startStack(ctx, broker, models, log)
	if err != nil {
		return kc, tcfg, nil, err
	}
	var parts []string
	if broker {
		kc.Brokers = []string{st.Addrs.Kafka}
		parts = append(parts, "an embedded Kafka broker at "+st.Addrs.Kafka+" (no --brokers)")
	}
	if models {
		tcfg.Address = st.Addrs.GRPC
		parts = append(parts, "an embedded model server at "+st.Addrs.GRPC+" (no --tfserving)")
	}
	fmt.Fprintf(std.err, "inferops perf: running against %s, state in %s (removed afterwards); figures are this machine's, everything in one process\n",
		strings.Join(parts, " and "), dir)
	return kc, tcfg, func() { _ = st.Close(); _ = os.RemoveAll(dir) }, nil
}

// startStack runs perf's own embedded broker (with the pipeline's and
// perf's topics) and/or model server on free ports, in a temporary
// directory the caller removes: a perf run must not touch the state of a
// persistent `inferops serve`.
func (c *perfCmd) startStack(ctx context.Context, broker, models bool, log *slog.Logger) (*stack.Stack, string, error) {
	dir, err := os.MkdirTemp("", "inferops-perf-")
	if err != nil {
		return nil, "", fmt.Errorf("perf: temporary directory for the embedded stack: %v (set TMPDIR)", err)
	}
	limitMemory()
	sc := stack.Config{DataDir: dir, ExtraTopics: perf.PerfTopics(), Logger: log}
	if broker {
		sc.Broker = &cluster.BrokerConfig{Addr: "127.0.0.1:0", RetentionInterval: 5 * time.Second}
	}
	if models {
		sc.Models = &modelserver.Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "-", InjectLatency: c.inject}
	}
	st, err := stack.Start(ctx, sc)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	return st, dir, nil
}

// runScenarios runs each scenario in turn, showing progress on a terminal,
// and returns the results and the names of those that failed. A scenario
// that could not run returns its error with the results before it.
func (c *perfCmd) runScenarios(ctx context.Context, std stdio, base perf.Options, scenarios []perf.Scenario) (results []perf.Result, failed []string, err error) {
	progress := !c.jsonOut && isTerminal(std.err)
	for _, sc := range scenarios {
		o := base
		o.Scenario = sc
		run, err := perf.Start(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if progress {
			showProgress(std.err, sc.Name, run)
		} else {
			<-run.Done()
		}
		res, err := run.Result()
		if err != nil {
			return results, failed, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		results = append(results, *res)
		if !res.Pass {
			failed = append(failed, res.Scenario)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return results, failed, nil
}

// print writes the results: JSON (one object, or an array for --scenario
// all), or the table compared with the previous runs.
func (c *perfCmd) print(w io.Writer, results []perf.Result, previous map[string]perf.Result, embedded bool) error {
	if c.jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		var v any = results
		if c.scenario != "all" && len(results) == 1 {
			v = results[0]
		}
		return enc.Encode(v)
	}
	fmt.Fprint(w, perf.FormatTable(results, previous))
	for _, r := range results {
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "%s: %s\n", r.Scenario, warn)
		}
	}
	if embedded {
		fmt.Fprintln(w, "(embedded broker, model server, perf worker and generator share this machine's CPUs: the figures are a floor, not a cluster's)")
	}
	return nil
}

// scenarios resolves --scenario and the overrides into what to run.
func (c *perfCmd) scenarios() ([]perf.Scenario, error) {
	var base []perf.Scenario
	switch name := strings.ToLower(strings.TrimSpace(c.scenario)); name {
	case "all":
		base = perf.Scenarios()
	case perf.Custom:
		if c.streams == 0 || c.payload == 0 || c.rate == 0 || c.slo == 0 {
			return nil, errors.New("--scenario custom needs --streams, --payload-bytes, --rate and --slo")
		}
		base = []perf.Scenario{{Name: perf.Custom}}
	default:
		s, err := perf.Lookup(name)
		if err != nil {
			return nil, err
		}
		base = []perf.Scenario{s}
	}
	if c.streams < 0 || c.payload < 0 || c.rate < 0 || c.slo < 0 || c.duration < 0 {
		return nil, errors.New("--streams, --payload-bytes, --rate, --slo and --duration must not be negative")
	}
	for i := range base {
		s := &base[i]
		if c.streams > 0 || c.payload > 0 || c.slo > 0 {
			s.Name = perf.Custom
		}
		if c.streams > 0 {
			s.Streams = c.streams
		}
		if c.payload > 0 {
			s.PayloadBytes = c.payload
		}
		if c.slo > 0 {
			s.SLO = c.slo
		}
		if c.rate > 0 {
			s.Rate = c.rate
		}
		if c.duration > 0 {
			s.Duration = c.duration
		}
		s.SetDefaults()
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
	}
	if len(base) > 1 && base[0].Name == perf.Custom {
		return nil, errors.New("--scenario all runs the seed's three as they are: drop --streams, --payload-bytes and --slo (or pick one scenario)")
	}
	return base, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// showProgress redraws one status line on stderr until the run ends.
func showProgress(w io.Writer, name string, run *perf.Run) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-run.Done():
			fmt.Fprint(w, "\r\033[K")
			return
		case <-t.C:
			p := run.Progress()
			step := ""
			if p.Steps > 1 {
				step = fmt.Sprintf(" step %d/%d", p.Step, p.Steps)
			}
			fmt.Fprintf(w, "\r\033[K%s%s %s %4.1fs/%s  rate %.0f/s  sent %d  acked %d  received %d  errors %d  p99 now %.1f ms",
				name, step, p.Phase, p.Elapsed.Seconds(), p.Duration, p.TargetRate, p.Sent, p.Acked, p.Received, p.Errors, p.CurrentP99)
		}
	}
}
