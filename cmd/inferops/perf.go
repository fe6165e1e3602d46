package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/internal/paths"
	"github.com/inferops/inferops/pipeline"
)

func init() {
	register(&command{name: "perf", summary: "run the seed's perf scenarios (small/medium/high) and report throughput, latency percentiles and SLO verdicts", run: runPerf})
}

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
against the same TF Serving; production consumers never see them. --topic on
the command line targets another input topic instead (the production workers
then serve it and their results go to --output).

Without --brokers it starts its own embedded broker and model server in a
temporary directory, removed afterwards. Every run is appended to the history
(--history) and compared with the previous run of the same scenario.
Exit status 1 when any scenario fails.`

// perfFlags is the parsed command line.
type perfFlags struct {
	kafka        *cluster.Config
	tfs          tfserving.Config
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
	target       string
	workers      int
	maxBatch     int
	batchTimeout time.Duration
	producers    int
	compression  string
	history      string
	inject       time.Duration
}

func runPerf(ctx context.Context, args []string) error {
	return perfMain(ctx, args, os.Stdout, os.Stderr)
}

func perfMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("perf", "perf [--scenario small|medium|high|all|custom] [--duration 30s] [--json] [--find-max] [flags]", perfHelp)
	var f perfFlags
	f.kafka = addKafkaFlags(fs)
	fs.StringVar(&f.tfs.Address, "tfserving", "", "TF Serving gRPC host:port; empty with --brokers is an error, empty without = an embedded model server")
	fs.BoolVar(&f.tfs.TLS.Enable, "tfserving-tls", false, "TLS to TF Serving (implied by any --tfserving-tls-* file)")
	fs.StringVar(&f.tfs.TLS.CAFile, "tfserving-tls-ca-file", "", "PEM CA bundle that signed TF Serving's certificate")
	fs.StringVar(&f.tfs.TLS.CertFile, "tfserving-tls-cert-file", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&f.tfs.TLS.KeyFile, "tfserving-tls-key-file", "", "PEM client key for mutual TLS")
	fs.BoolVar(&f.tfs.TLS.InsecureSkipVerify, "tfserving-tls-insecure-skip-verify", false, "do not verify TF Serving's certificate (testing only)")
	fs.StringVar(&f.scenario, "scenario", perf.Small, "small, medium, high, all (the three in turn) or custom")
	fs.IntVar(&f.streams, "streams", 0, "concurrent producer streams sharing the rate (custom; overrides the scenario's)")
	fs.IntVar(&f.payload, "payload-bytes", 0, "record size in bytes (custom; overrides the scenario's)")
	fs.Float64Var(&f.rate, "rate", 0, "target send rate in msg/s; 0 = the scenario's (the seed's measured Kafka throughput)")
	fs.DurationVar(&f.duration, "duration", 0, "how long to send; 0 = 30s (10s per step with --find-max)")
	fs.DurationVar(&f.slo, "slo", 0, "end-to-end p99 latency SLO (custom; overrides the scenario's)")
	fs.BoolVar(&f.jsonOut, "json", false, "print only JSON on stdout: one object per scenario, an array for --scenario all")
	fs.BoolVar(&f.findMax, "find-max", false, "search (bounded steps of --duration) for the highest rate that still meets the SLO")
	fs.IntVar(&f.findMaxSteps, "find-max-steps", perf.DefaultFindMaxSteps, "most runs --find-max makes per scenario")
	fs.DurationVar(&f.drain, "drain-timeout", perf.DefaultDrainTimeout, "how long to wait for results after the last send; later ones count as lost")
	fs.DurationVar(&f.ramp, "ramp", 0, "send at the target rate this long before measuring; 0 = a fifth of --duration within 1-5s")
	fs.BoolVar(&f.noRamp, "no-ramp", false, "measure from the first record (a cold pipeline's first second counts)")
	fs.DurationVar(&f.warmup, "warmup-timeout", perf.DefaultWarmupTimeout, "how long to wait for the pipeline to answer a probe on every partition before timing starts")
	fs.StringVar(&f.topic, "topic", perf.DefaultInput, "input topic to load; anything but "+perf.DefaultInput+" must be given on the command line and is served by whatever consumes it")
	fs.StringVar(&f.output, "output", "", "where results of --topic appear (default ai_output; "+perf.DefaultOutput+" for the perf topic)")
	fs.StringVar(&f.dlq, "dlq", "", "dead-letter topic of the perf worker (default "+perf.DefaultDLQ+")")
	fs.StringVar(&f.group, "group", perf.DefaultGroup, "consumer group of the perf worker (never the production group)")
	fs.StringVar(&f.model, "model", pipeline.DefaultModel, "model name on TF Serving")
	fs.StringVar(&f.target, "target-version", "latest", "model version the perf worker calls: latest, 2, v2, label:stable")
	fs.IntVar(&f.workers, "workers", 4, "perf worker members (at most the input's partitions)")
	fs.IntVar(&f.maxBatch, "max-batch", 64, "rows per Predict call of the perf worker")
	fs.DurationVar(&f.batchTimeout, "batch-timeout", time.Millisecond, "longest wait to fill a batch in the perf worker")
	fs.IntVar(&f.producers, "producers", perf.DefaultProducers, "sarama producers the streams share; 0 = one per 20,000 msg/s of target rate (1 to 4)")
	fs.StringVar(&f.compression, "compression", pipeline.DefaultCompression, "producer compression: zstd (the seed's), lz4, snappy, gzip, none")
	fs.StringVar(&f.history, "history", filepath.Join(paths.StateDir(), perf.HistoryFile), "history file (JSON lines); empty = keep none")
	fs.DurationVar(&f.inject, "inject-latency", 0, "embedded model server only: add this delay to every Predict (to see a slow model fail its SLO)")
	layers, err := parseFlagLayers(fs, args)
	if err != nil {
		return err
	}
	// The pipeline.* keys of the config file and INFEROPS_* variables
	// describe the production pipeline. Perf must not pick them up as its
	// targets, or a config file would point a perf run at production: only
	// the command line can move it off its own topics and group.
	var ignored []string
	for _, name := range []string{"topic", "output", "dlq", "group"} {
		if o, ok := layers.Origins[name]; ok && o.Source != config.SourceFlag && o.Source != config.SourceDefault {
			ignored = append(ignored, fmt.Sprintf("--%s from %s", name, o))
			_ = fs.Set(name, fs.Lookup(name).DefValue)
		}
	}
	scenarios, err := perfScenarios(f, fs)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	target, err := tfserving.ParseTarget(f.target)
	if err != nil {
		return fmt.Errorf("%w: --target-version: %v", errUsage, err)
	}
	if f.inject < 0 {
		return fmt.Errorf("%w: --inject-latency %v is negative", errUsage, f.inject)
	}
	embeddedKafka := len(f.kafka.Brokers) == 0
	embeddedTFS := f.tfs.Address == ""
	if !embeddedKafka && embeddedTFS {
		return fmt.Errorf("%w: --brokers without --tfserving: give the TF Serving the perf worker should call (perf starts its own model server only together with its own broker)", errUsage)
	}
	if f.inject > 0 && !embeddedTFS {
		return fmt.Errorf("%w: --inject-latency works on the embedded model server only (drop --tfserving)", errUsage)
	}
	otherTopic := f.topic != perf.DefaultInput
	if f.topic == "" {
		return fmt.Errorf("%w: --topic is empty", errUsage)
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, s := range ignored {
		fmt.Fprintf(stderr, "inferops perf: ignoring %s: perf only leaves its own topics and group when told so on the command line\n", s)
	}

	// The embedded stack lives in a temporary directory: a perf run must not
	// touch the state of a persistent `inferops serve`.
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	kcfg := *f.kafka
	if embeddedKafka || embeddedTFS {
		dir, err := os.MkdirTemp("", "inferops-perf-")
		if err != nil {
			return fmt.Errorf("perf: temporary directory for the embedded stack: %v (set TMPDIR)", err)
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		limitMemory()
		if embeddedKafka {
			topics := append(perf.PerfTopics(), pipeline.Topics(pipeline.DefaultRetention)...)
			br, err := cluster.StartBroker(ctx, cluster.BrokerConfig{
				Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "kafka"), Topics: topics,
				RetentionInterval: 5 * time.Second, Logger: log,
			})
			if err != nil {
				return fmt.Errorf("perf: embedded broker: %w", err)
			}
			cleanup = append(cleanup, func() { br.Close() })
			kcfg.Brokers = br.Addrs()
		}
		if embeddedTFS {
			ms, err := modelserver.Start(ctx, modelserver.Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "-", DataDir: dir, InjectLatency: f.inject, Logger: log})
			if err != nil {
				return fmt.Errorf("perf: embedded model server: %w", err)
			}
			cleanup = append(cleanup, func() { ms.Close() })
			f.tfs.Address = ms.GRPCAddr()
		}
		var parts []string
		if embeddedKafka {
			parts = append(parts, "an embedded Kafka broker at "+strings.Join(kcfg.Brokers, ",")+" (no --brokers)")
		}
		if embeddedTFS {
			parts = append(parts, "an embedded model server at "+f.tfs.Address+" (no --tfserving)")
		}
		fmt.Fprintf(stderr, "inferops perf: running against %s, state in %s (removed afterwards); figures are this machine's, everything in one process\n",
			strings.Join(parts, " and "), dir)
	}
	kcfg.SetDefaults()
	if err := kcfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	tfs, err := tfserving.Dial(f.tfs)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer tfs.Close()

	base := perf.Options{
		Kafka: kcfg, TFServing: tfs, Model: f.model, Target: target,
		Input: f.topic, Output: f.output, DLQ: f.dlq, Group: f.group, NoWorker: otherTopic,
		Workers: f.workers, MaxBatch: f.maxBatch, BatchTimeout: f.batchTimeout,
		Producers: f.producers, Compression: f.compression,
		DrainTimeout: f.drain, WarmupTimeout: f.warmup, Ramp: f.ramp, NoRamp: f.noRamp,
		FindMax: f.findMax, FindMaxSteps: f.findMaxSteps, FindMaxStepDuration: f.duration,
		HistoryPath: f.history, Embedded: embeddedKafka, Logger: log,
	}
	if otherTopic {
		out := f.output
		if out == "" {
			out = pipeline.DefaultOutput
		}
		fmt.Fprintf(stderr, "\n*** inferops perf: WRITING PERF RECORDS INTO %q (--topic), NOT %s ***\n*** whatever consumes %s will process them and write results to %s, where downstream applications see them ***\n\n", f.topic, perf.DefaultInput, f.topic, out)
	}
	previous := map[string]perf.Result{}
	if f.history != "" {
		if previous, err = perf.LastRuns(f.history); err != nil {
			fmt.Fprintf(stderr, "inferops perf: %v (continuing without comparison)\n", err)
			previous = map[string]perf.Result{}
		}
	}
	live := !f.jsonOut && isTerminal(stderr)
	var results []perf.Result
	var failed []string
	for _, sc := range scenarios {
		o := base
		o.Scenario = sc
		run, err := perf.Start(ctx, o)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if live {
			showProgress(stderr, sc.Name, run)
		} else {
			<-run.Done()
		}
		res, err := run.Result()
		if err != nil {
			return err
		}
		results = append(results, *res)
		if !res.Pass {
			failed = append(failed, res.Scenario)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var v any = results
		if f.scenario != "all" && len(results) == 1 {
			v = results[0]
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, perf.FormatTable(results, previous))
		for _, r := range results {
			for _, w := range r.Warnings {
				fmt.Fprintf(stdout, "%s: %s\n", r.Scenario, w)
			}
		}
		if embeddedKafka {
			fmt.Fprintln(stdout, "(embedded broker, model server, perf worker and generator share this machine's CPUs: the figures are a floor, not a cluster's)")
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted: the figures above cover the part that ran")
	}
	if len(failed) > 0 {
		return fmt.Errorf("FAIL: %s (see the table: p99 over the SLO, lost records or the target rate not reached)", strings.Join(failed, ", "))
	}
	return nil
}

// perfScenarios resolves --scenario and the overrides into what to run.
func perfScenarios(f perfFlags, fs *flag.FlagSet) ([]perf.Scenario, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var base []perf.Scenario
	switch name := strings.ToLower(strings.TrimSpace(f.scenario)); name {
	case "all":
		base = perf.Scenarios()
	case perf.Custom:
		if f.streams == 0 || f.payload == 0 || f.rate == 0 || f.slo == 0 {
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
	if f.streams < 0 || f.payload < 0 || f.rate < 0 || f.slo < 0 || f.duration < 0 {
		return nil, errors.New("--streams, --payload-bytes, --rate, --slo and --duration must not be negative")
	}
	for i := range base {
		s := &base[i]
		if f.streams > 0 || f.payload > 0 || f.slo > 0 {
			s.Name = perf.Custom
		}
		if f.streams > 0 {
			s.Streams = f.streams
		}
		if f.payload > 0 {
			s.PayloadBytes = f.payload
		}
		if f.slo > 0 {
			s.SLO = f.slo
		}
		if f.rate > 0 {
			s.Rate = f.rate
		}
		if f.duration > 0 {
			s.Duration = f.duration
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
