package perf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
)

// The perf pipeline's own topics and group: a perf run never feeds the
// production input topic or its consumers unless --topic says so.
const (
	DefaultInput  = "ai_input.perf"
	DefaultOutput = "ai_output.perf"
	DefaultDLQ    = "ai_input.perf.dlq"
	DefaultGroup  = "inferops_perf"
)

// ProducersFor is the automatic producer count for a target rate: one per
// ProducerRate msg/s, at least 1 and at most MaxAutoProducers, so the
// generator can offer well over what the pipeline absorbs
// (BenchmarkHeadroom) while moderate rates keep one well-filled producer.
func ProducersFor(rate float64) int {
	n := int(math.Ceil(rate / ProducerRate))
	return min(max(n, 1), MaxAutoProducers)
}

// Defaults for the run's knobs.
const (
	DefaultDrainTimeout  = 10 * time.Second
	DefaultWarmupTimeout = 30 * time.Second
	// DefaultProducers is 0: one producer per ProducerRate msg/s of the
	// target rate (see ProducersFor).
	DefaultProducers = 0
	// ProducerRate is the target rate one sarama AsyncProducer is given
	// before another is added: one producer batches best (lower latency at
	// moderate rates), but alone it tops out near 60k acked 2 KB msg/s on
	// two cores, too close to what the pipeline absorbs to overload it.
	ProducerRate = 20_000
	// MaxAutoProducers bounds the automatic choice (4 reached ~128k msg/s).
	MaxAutoProducers    = 4
	DefaultFindMaxSteps = 8
	DefaultFindMaxStep  = 10 * time.Second
	DefaultPartitions   = 12
)

// PerfTopics are the topics a default perf run creates when missing: the
// seed's 12 partitions, an hour of retention (perf records are worth nothing
// after the run) and small segments so an embedded broker frees them soon.
func PerfTopics() []pipeline.TopicSpec {
	r := pipeline.Retention{Bytes: 256 << 20, Time: time.Hour, SegmentBytes: 16 << 20}
	return []pipeline.TopicSpec{
		{Name: DefaultInput, Partitions: DefaultPartitions, Configs: r.Configs()},
		{Name: DefaultOutput, Partitions: DefaultPartitions, Configs: r.Configs()},
		{Name: DefaultDLQ, Partitions: 3, Configs: r.Configs()},
	}
}

// Options configures a perf run.
type Options struct {
	Scenario Scenario
	Kafka    cluster.Config
	// TFServing is the model server the perf worker calls (and asks for the
	// signature). When nil, TFServingAddress is dialled.
	TFServing        *tfserving.Client
	TFServingAddress string
	Model            string           // --model
	Target           tfserving.Target // version the perf worker calls

	// Input, Output and DLQ default to the perf topics. Any other Input is
	// the operator's explicit choice (--topic) and is written to as is.
	Input, Output, DLQ string
	// NoWorker skips the in-process perf worker: something else (the
	// production workers, for --topic) must consume Input and write results
	// to Output.
	NoWorker bool
	// The perf worker's pool (its own group, so production consumers are
	// never part of it).
	Group        string
	Workers      int
	MaxBatch     int
	BatchTimeout time.Duration

	// Schema is the record schema the generator writes for; nil builds it
	// from the model's signature (TF Serving is asked) with Records.
	Schema *pipeline.Schema
	// Records say how records name the signature's inputs (--id-field,
	// --input-field), for the generator and the perf worker alike.
	Records pipeline.SchemaOptions
	// Producers is how many sarama AsyncProducers the streams share. One
	// batches best: at 10k msg/s on the embedded stack two producers (half
	// batches each) raised p50 from ~11 to ~14 ms and p99 from 20-28 to
	// 35-50 ms. More only helps when the generator itself is the limit
	// (BenchmarkGenerator: ~60k vs ~100k acked 2 KB msg/s on two cores).
	Producers int
	// Compression of produced records: "zstd" (the seed's), "lz4", "snappy",
	// "gzip" or "none".
	Compression string

	// DrainTimeout is how long to wait for results after the last send;
	// what has not arrived by then is lost.
	DrainTimeout time.Duration
	// Ramp is how long the generator sends at the target rate before the
	// clock starts: the first second of a fresh pipeline (heap growth, new
	// log segments, batches not yet full) is not its steady state and would
	// be most of a short run's p99. 0 picks a fifth of the duration within
	// 1-5 s; NoRamp skips it.
	Ramp   time.Duration
	NoRamp bool
	// WarmupTimeout bounds the wait for a probe result on every input
	// partition before the clock starts (group join, model load, backlog).
	WarmupTimeout time.Duration

	// FindMax searches for the highest rate that meets the SLO: at most
	// FindMaxSteps runs of FindMaxStepDuration each.
	FindMax             bool
	FindMaxSteps        int
	FindMaxStepDuration time.Duration

	// HistoryPath is the JSON-lines history file; empty keeps no history.
	HistoryPath string
	// Embedded marks results from the in-process broker and model server.
	Embedded bool
	Logger   *slog.Logger
}

// SetDefaults fills zero fields.
func (o *Options) SetDefaults() {
	o.Scenario.SetDefaults()
	o.Kafka.SetDefaults()
	if o.Model == "" {
		o.Model = pipeline.DefaultModel
	}
	if o.Input == "" {
		o.Input = DefaultInput
	}
	if o.Output == "" {
		if o.Input == DefaultInput {
			o.Output = DefaultOutput
		} else {
			o.Output = pipeline.DefaultOutput
		}
	}
	if o.DLQ == "" {
		if o.Input == DefaultInput {
			o.DLQ = DefaultDLQ
		} else {
			o.DLQ = o.Input + ".dlq"
		}
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Producers == 0 {
		o.Producers = ProducersFor(o.Scenario.Rate)
	}
	if o.Compression == "" {
		o.Compression = pipeline.DefaultCompression
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.WarmupTimeout == 0 {
		o.WarmupTimeout = DefaultWarmupTimeout
	}
	if o.FindMaxSteps == 0 {
		o.FindMaxSteps = DefaultFindMaxSteps
	}
	if o.FindMaxStepDuration == 0 {
		o.FindMaxStepDuration = DefaultFindMaxStep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate names the flag behind each bad setting.
func (o Options) Validate() error {
	var errs []error
	if err := o.Scenario.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Input == o.Output {
		errs = append(errs, fmt.Errorf("--topic %q is also the output topic: results would be read back as input (set --output)", o.Input))
	}
	if o.TFServing == nil && o.TFServingAddress == "" && (!o.NoWorker || o.Schema == nil) {
		errs = append(errs, errors.New("no TF Serving to run the perf worker against (set --tfserving)"))
	}
	if _, err := compressionCodec(o.Compression); err != nil {
		errs = append(errs, err)
	}
	if o.Producers < 1 || o.Producers > 64 {
		errs = append(errs, fmt.Errorf("producers %d: want 1..64", o.Producers))
	}
	if o.Records.ValueFormat == pipeline.ValueFormatRaw || (o.Schema != nil && o.Schema.Raw()) {
		errs = append(errs, errors.New("--value-format raw: raw records carry no id, so perf cannot match results to what it sent; perf writes JSON records"))
	}
	if o.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %v: must not be negative", o.DrainTimeout))
	}
	if o.Ramp < 0 || o.Ramp > time.Hour {
		errs = append(errs, fmt.Errorf("--ramp %v: want 0 (automatic) up to 1h", o.Ramp))
	}
	if o.WarmupTimeout < 0 {
		errs = append(errs, fmt.Errorf("--warmup-timeout %v: must not be negative", o.WarmupTimeout))
	}
	if o.FindMax && (o.FindMaxSteps < 2 || o.FindMaxSteps > 30) {
		errs = append(errs, fmt.Errorf("--find-max-steps %d: want 2..30", o.FindMaxSteps))
	}
	if o.FindMax && o.FindMaxStepDuration < 500*time.Millisecond {
		errs = append(errs, fmt.Errorf("--duration %v per --find-max step: want at least 500ms", o.FindMaxStepDuration))
	}
	return errors.Join(errs...)
}

// rampFor is the ramp before a load of sc.
func (o Options) rampFor(sc Scenario) time.Duration {
	switch {
	case o.NoRamp:
		return 0
	case o.Ramp > 0:
		return o.Ramp
	}
	return min(max(sc.Duration/5, time.Second), 5*time.Second)
}

func compressionCodec(s string) (sarama.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "zstd":
		return sarama.CompressionZSTD, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "none", "":
		return sarama.CompressionNone, nil
	}
	return 0, fmt.Errorf("compression %q: want zstd, lz4, snappy, gzip or none", s)
}

// Phases of a run, as Progress reports them.
const (
	PhaseStarting = "starting" // connecting, creating topics, starting the perf worker
	PhaseWarmup   = "warmup"   // waiting for a probe result on every partition
	PhaseRamp     = "ramp"     // sending at the target rate, not yet measured
	PhaseRunning  = "running"  // the generator is sending
	PhaseDraining = "draining" // waiting for the last results
	PhaseDone     = "done"
)

// Progress is an immutable snapshot of a run for a live display.
type Progress struct {
	Phase      string
	Elapsed    time.Duration // since the current load started sending
	Duration   time.Duration // of the current load
	Step       int           // 1-based --find-max step; 1 for a plain run
	Steps      int           // planned upper bound of steps
	TargetRate float64
	Sent       uint64
	Acked      uint64
	Received   uint64
	Errors     uint64
	// CurrentP99 is the p99 of the last one to two seconds, in ms.
	CurrentP99 float64
}

// Run is a perf run in progress. All methods are safe for concurrent use.
type Run struct {
	opts   Options
	runID  string
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	phase      atomic.Pointer[string]
	cur        atomic.Pointer[load]
	curDur     atomic.Int64
	curRate    atomic.Uint64 // float64 bits
	step       atomic.Int32
	steps      atomic.Int32
	result     *Result
	err        error
	resultOnce sync.Once
}

// Start validates opts and begins the run in the background. Connection and
// setup errors come back from Result.
func Start(ctx context.Context, opts Options) (*Run, error) {
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Run{opts: opts, runID: newRunID(), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	r.setPhase(PhaseStarting)
	r.step.Store(1)
	r.steps.Store(1)
	if opts.FindMax {
		r.steps.Store(int32(opts.FindMaxSteps))
	}
	go r.main()
	return r, nil
}

// RunID identifies this run in record ids, keys and the history.
func (r *Run) RunID() string { return r.runID }

// Done is closed when the run has finished, failed or been cancelled.
func (r *Run) Done() <-chan struct{} { return r.done }

// Cancel stops the run early; Result then reports what was measured so far
// (a cancelled run never passes).
func (r *Run) Cancel() { r.cancel() }

// Result waits for the run and returns its figures.
func (r *Run) Result() (*Result, error) {
	<-r.done
	return r.result, r.err
}

// Progress is the run's current state.
func (r *Run) Progress() Progress {
	p := Progress{
		Phase:      *r.phase.Load(),
		Step:       int(r.step.Load()),
		Steps:      int(r.steps.Load()),
		Duration:   time.Duration(r.curDur.Load()),
		TargetRate: float64frombits(r.curRate.Load()),
	}
	if ld := r.cur.Load(); ld != nil {
		p.Elapsed = min(time.Since(ld.start), p.Duration)
		if p.Phase != PhaseRunning && p.Phase != PhaseRamp {
			p.Elapsed = p.Duration
		}
		p.Sent = ld.sent.Load()
		p.Acked = ld.acked.Load()
		p.Received = ld.received.Load()
		p.Errors = ld.failed.Load()
		p.CurrentP99 = ld.lat.windowP99()
	}
	return p
}

func (r *Run) setPhase(p string) { r.phase.Store(&p) }

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "perf" + time.Now().UTC().Format("20060102T150405") + hex.EncodeToString(b[:])
}

// rig is what a run sets up once and its loads share: the topics, the perf
// worker and the clients.
type rig struct {
	opts      Options
	brokers   []string
	prodCfg   *sarama.Config
	tfs       *tfserving.Client
	ownTFS    bool
	pool      *worker.Pool
	coll      *collector
	synth     *pipeline.Synth
	inputPart []int32
}

func (r *Run) main() {
	defer close(r.done)
	defer r.cancel()
	defer r.setPhase(PhaseDone)
	started := time.Now()
	p, err := r.setup()
	if err != nil {
		r.err = err
		return
	}
	defer p.close()
	var res *Result
	if r.opts.FindMax {
		res, err = r.findMax(p)
	} else {
		sc := r.opts.Scenario
		res, err = r.runLoad(p, sc, r.runID)
	}
	if err != nil {
		r.err = err
		return
	}
	res.StartedAt = started.UTC()
	// A cancelled run is reported but not kept: its partial figures would
	// make the next complete run look better or worse than it is.
	if r.opts.HistoryPath != "" && r.ctx.Err() == nil {
		prev, herr := LastRun(r.opts.HistoryPath, res.Scenario)
		if herr != nil {
			res.Warnings = append(res.Warnings, herr.Error())
		}
		if prev != nil {
			c := Compare(*prev, *res)
			res.Comparison = &c
		}
		if herr := AppendHistory(r.opts.HistoryPath, *res); herr != nil {
			res.Warnings = append(res.Warnings, herr.Error())
		}
	}
	r.result = res
}

func (r *Run) setup() (*rig, error) {
	o := r.opts
	ctx := r.ctx
	p := &rig{opts: o, brokers: o.Kafka.Brokers, tfs: o.TFServing}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	if p.tfs == nil && o.TFServingAddress != "" {
		c, err := tfserving.Dial(tfserving.Config{Address: o.TFServingAddress})
		if err != nil {
			return nil, err
		}
		p.tfs, p.ownTFS = c, true
	}
	schema := o.Schema
	if schema == nil {
		md, err := p.tfs.Metadata(ctx, o.Model, o.Target)
		if err != nil {
			return nil, fmt.Errorf("perf: learn the signature of %s: %w", o.Model, err)
		}
		sig, err := md.ServingDefault()
		if err != nil {
			return nil, fmt.Errorf("perf: %w", err)
		}
		if schema, err = pipeline.NewSchema(sig.InputSpecs(), o.Records); err != nil {
			return nil, fmt.Errorf("perf: model %s: %w", o.Model, err)
		}
	}
	p.synth = pipeline.NewSynth(schema)
	if o.Input == DefaultInput {
		created, err := cluster.EnsureTopics(ctx, o.Kafka, PerfTopics())
		if err != nil {
			return nil, fmt.Errorf("perf: create the perf topics: %w", err)
		}
		if len(created) > 0 {
			o.Logger.Info("created perf topics", "topics", created)
		}
	}
	codec, _ := compressionCodec(o.Compression)
	var err error
	if p.prodCfg, err = o.Kafka.Sarama(); err != nil {
		return nil, err
	}
	tuneProducer(p.prodCfg, o.Scenario.PayloadBytes, codec)
	cc, err := o.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	tuneConsumer(cc)
	client, err := sarama.NewClient(p.brokers, cc)
	if err != nil {
		return nil, o.Kafka.Explain(err)
	}
	p.inputPart, err = client.Partitions(o.Input)
	client.Close()
	if err != nil {
		return nil, o.Kafka.Explain(fmt.Errorf("perf: input topic %q: %w (create it, or drop --topic to use %s)", o.Input, err, DefaultInput))
	}
	// The collector starts at the output's end before anything is sent, so
	// every result of this run is seen and nothing older is.
	if p.coll, err = newCollector(p.brokers, cc, o.Output, o.DLQ); err != nil {
		return nil, o.Kafka.Explain(fmt.Errorf("perf: %w", err))
	}
	if !o.NoWorker {
		pool, err := worker.NewPool(o.Kafka, p.tfs, worker.Config{
			// Unique per process: two perf runs on one host must not fence
			// each other's members, and nothing restarts a perf run.
			Instance: worker.HostInstance() + "-perf-" + strconv.Itoa(os.Getpid()),
			Model:    o.Model, Input: o.Input, Output: o.Output, DLQ: o.DLQ, Group: o.Group,
			Workers: o.Workers, MaxBatch: o.MaxBatch, BatchTimeout: o.BatchTimeout, Target: o.Target,
			IDField: o.Records.IDField, InputFields: o.Records.InputFields,
		}, o.Logger.With("component", "perf-worker"))
		if err != nil {
			return nil, fmt.Errorf("perf worker: %w", err)
		}
		if err := pool.Start(ctx); err != nil {
			return nil, fmt.Errorf("perf worker: %w", err)
		}
		p.pool = pool
	}
	ok = true
	return p, nil
}

func (p *rig) close() {
	if p.pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := p.pool.Close(ctx); err != nil {
			p.opts.Logger.Warn("perf worker close", "err", err)
		}
		cancel()
	}
	if p.coll != nil {
		_ = p.coll.close()
	}
	if p.ownTFS && p.tfs != nil {
		_ = p.tfs.Close()
	}
}

// warmup sends a probe to every input partition (again each second until
// answered) and returns once each has a result: the perf worker has joined
// its group, the model is loaded and any backlog from an earlier run has been
// served, so none of that is charged to the measured records. It gives up
// after WarmupTimeout with a warning: a dead pipeline then shows as lost
// records, not as a hang.
func (r *Run) warmup(p *rig, sc Scenario, run string) (warning string) {
	if r.opts.WarmupTimeout == 0 {
		return ""
	}
	r.setPhase(PhaseWarmup)
	ld := newLoad(run+"w", time.Now())
	p.coll.follow(ld)
	cfg := *p.prodCfg
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Flush.Frequency = 0
	cfg.Producer.Flush.Bytes = 0
	sp, err := sarama.NewSyncProducer(p.brokers, &cfg)
	if err != nil {
		return fmt.Sprintf("warm-up: %v", r.opts.Kafka.Explain(err))
	}
	defer sp.Close()
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	b := newPayloadBuilder(run+"w", sc.PayloadBytes, p.synth, rng)
	s := b.newStream(0, rng)
	answered := map[int32]bool{}
	probes := map[int64]int32{}
	var seq int64
	deadline := time.Now().Add(r.opts.WarmupTimeout)
	for {
		for _, part := range p.inputPart {
			if answered[part] {
				continue
			}
			now := time.Since(ld.start)
			ld.ledger.sent(seq, int64(now))
			_, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: r.opts.Input, Partition: part, Key: sarama.ByteEncoder(s.key),
				Value: sarama.ByteEncoder(b.build(nil, s, seq, ld.start.UnixNano()+int64(now)))})
			if err != nil {
				return fmt.Sprintf("warm-up: produce to %s/%d: %v", r.opts.Input, part, r.opts.Kafka.Explain(err))
			}
			probes[seq] = part
			seq++
		}
		for wait := time.Now().Add(time.Second); time.Now().Before(wait); {
			for q, part := range probes {
				if ld.ledger.isReceived(q) {
					answered[part] = true
					delete(probes, q)
				}
			}
			if len(answered) == len(p.inputPart) {
				return ""
			}
			if n := ld.deadLettered.Load(); n > 0 {
				return fmt.Sprintf("warm-up: the worker dead-lettered %d probes to %s: it rejects these records (does the model take %s? see the DLQ's inferops-error header)", n, r.opts.DLQ, p.synth.Schema().Describe())
			}
			if time.Now().After(deadline) {
				return fmt.Sprintf("warm-up: %d of %d partitions of %s answered no probe within %v (is a worker consuming %s and writing to %s?)",
					len(p.inputPart)-len(answered), len(p.inputPart), r.opts.Input, r.opts.WarmupTimeout, r.opts.Input, r.opts.Output)
			}
			select {
			case <-r.ctx.Done():
				return "warm-up cancelled"
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// runLoad warms the pipeline up, sends sc for its duration, drains and
// measures.
func (r *Run) runLoad(p *rig, sc Scenario, run string) (*Result, error) {
	r.cur.Store(nil) // the previous step's counts are not this one's
	r.curDur.Store(int64(sc.Duration))
	r.curRate.Store(float64bits(sc.Rate))
	var warnings []string
	if w := r.warmup(p, sc, run); w != "" {
		warnings = append(warnings, w)
		r.opts.Logger.Warn(w)
	}
	if err := r.ctx.Err(); err != nil {
		return nil, fmt.Errorf("perf run cancelled during warm-up")
	}
	gcfg := generatorConfig{Topic: r.opts.Input, Synth: p.synth, Producers: r.opts.Producers, Sarama: p.prodCfg, Brokers: p.brokers}
	// Both generators connect before either sends, so the measured load
	// follows the ramp without a gap.
	var rampGen *generator
	var rampLd *load
	if ramp := r.opts.rampFor(sc); ramp > 0 {
		rsc := sc
		rsc.Duration = ramp
		rampLd = newLoad(run+"r", time.Now())
		var err error
		if rampGen, err = newGenerator(rsc, run+"r", gcfg, rampLd); err != nil {
			return nil, r.opts.Kafka.Explain(fmt.Errorf("perf generator: %w", err))
		}
	}
	ld := newLoad(run, time.Now())
	g, err := newGenerator(sc, run, gcfg, ld)
	if err != nil {
		if rampGen != nil {
			rampGen.closeProducers()
		}
		return nil, r.opts.Kafka.Explain(fmt.Errorf("perf generator: %w", err))
	}
	if rampGen != nil {
		r.curDur.Store(int64(rampGen.scenario.Duration))
		rampLd.start = time.Now()
		p.coll.follow(rampLd)
		r.cur.Store(rampLd)
		r.setPhase(PhaseRamp)
		rampGen.run(r.ctx)
		r.curDur.Store(int64(sc.Duration))
	}
	ld.start = time.Now()
	p.coll.follow(ld)
	r.cur.Store(ld)
	r.setPhase(PhaseRunning)

	stopTicker := make(chan struct{})
	go func() { // rotates the live p99 window
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopTicker:
				return
			case <-t.C:
				ld.lat.rotate()
			}
		}
	}()
	defer close(stopTicker)

	g.run(r.ctx)
	sendEnd := time.Since(ld.start)
	r.setPhase(PhaseDraining)
	cancelled := r.ctx.Err() != nil
	drainUntil := time.Now().Add(r.opts.DrainTimeout)
	for !cancelled && ld.received.Load()+ld.deadLettered.Load() < ld.acked.Load() && time.Now().Before(drainUntil) {
		select {
		case <-r.ctx.Done():
			cancelled = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	res := r.measure(p, sc, run, ld, g, sendEnd)
	res.Warnings = append(warnings, res.Warnings...)
	if cancelled {
		res.Pass = false
		res.Warnings = append(res.Warnings, "run cancelled before it finished")
	}
	return res, nil
}

func float64bits(f float64) uint64     { return math.Float64bits(f) }
func float64frombits(u uint64) float64 { return math.Float64frombits(u) }
