package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// Pool runs the worker's consumer-group members in this process and is the
// controller the console and `inferops worker` use. All methods are safe for
// concurrent use.
type Pool struct {
	kafka cluster.Config
	cfg   Config
	log   *slog.Logger
	tfs   *tfserving.Client

	consumerCfg *sarama.Config
	producerCfg *sarama.Config

	// Set by Start from the model signature.
	schema     *pipeline.Schema
	outputs    []string // in results, sorted; also Predict's output_filter
	outputJSON [][]byte // the same, as JSON strings
	binary     []bool   // outputs TF writes as {"b64": ...} (tensor.BinaryOutput)
	standIn    bool     // the server marks the model as a stand-in
	modelJSON  []byte
	partitions int

	target atomic.Pointer[tfserving.Target]
	split  atomic.Pointer[splitState] // a rollout's split, nil when none (split.go)
	// shadowSem bounds the shadow Predicts in flight; shadowWG waits for
	// them at Close.
	shadowSem chan struct{}
	shadowWG  sync.WaitGroup
	breaker   *breaker
	backoff   backoff

	ctx      context.Context // the pool's lifetime; ends at Close
	cancel   context.CancelFunc
	started  atomic.Bool
	closed   atomic.Bool
	producer sarama.AsyncProducer
	prodWG   sync.WaitGroup // producer result readers
	pending  atomic.Int64   // produce requests not yet acked
	bgWG     sync.WaitGroup // stats ticker

	// static: members join with a group.instance.id (cluster.StaticMembership)
	// and must be removed explicitly when they stop on purpose.
	static  bool
	scaleMu sync.Mutex // one ScaleTo or Close at a time: a slot is removed before it is reused

	mu      sync.Mutex // members, paused, lastN
	members []*member  // members[i] runs slot i+1
	lastN   int
	paused  bool

	consumed, produced, dlq, retries, duplicates atomic.Uint64
	errMu                                        sync.Mutex
	errs                                         map[string]uint64

	predictLat, e2eLat *window
	verMu              sync.Mutex
	versions           map[int64]*versionCounter

	doneMu sync.Mutex
	done   map[topicPartition]int64 // highest offset ever marked, to count re-deliveries

	events  *ring[pipeline.Event]
	recent  *ring[pipeline.DeadLetter]
	rateMu  sync.Mutex
	lastQPS float64
	lastAvg float64
	prevOut uint64
	prevBat [2]uint64 // batches, rows at the previous tick
	metrics *metrics

	lastDLQEvent, lastProduceEvent atomic.Int64

	gateMu  sync.Mutex
	stopped atomic.Bool   // fetching stopped (Pause or breaker)
	resumed chan struct{} // closed when stopped goes false

	// predictHook lets tests inject TF Serving's INVALID_ARGUMENT for chosen
	// rows (the real model server accepts every finite row we validated).
	predictHook func(in map[string]*tensor.Tensor) error
	probes      targetProbes // who is to blame for a refused batch (tfs.go)

	itemPool sync.Pool
	batches  sync.Pool // *batch
}

type topicPartition struct {
	topic     string
	partition int32
}

type versionCounter struct {
	count    atomic.Uint64
	lat, e2e *window
}

// NewPool checks the configs and prepares a pool; nothing connects until Start.
func NewPool(kafka cluster.Config, tfs *tfserving.Client, cfg Config, log *slog.Logger) (*Pool, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tfs == nil {
		return nil, errors.New("worker: no TF Serving client (set --tfserving)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kafka.SetDefaults()
	cc, err := kafka.Sarama()
	if err != nil {
		return nil, err
	}
	tuneConsumer(cc)
	pc, err := kafka.Sarama()
	if err != nil {
		return nil, err
	}
	tuneProducer(pc, cfg.MaxMessageBytes)
	p := &Pool{
		kafka: kafka, cfg: cfg, log: log, tfs: tfs,
		consumerCfg: cc, producerCfg: pc, static: cluster.StaticMembership(cc),
		backoff:    backoff{Base: cfg.RetryBase, Max: cfg.RetryMax},
		errs:       map[string]uint64{},
		predictLat: newWindow(), e2eLat: newWindow(),
		versions: map[int64]*versionCounter{},
		done:     map[topicPartition]int64{},
		events:   newRing[pipeline.Event](256),
		recent:   newRing[pipeline.DeadLetter](64),
		lastN:    cfg.Workers,
		metrics:  newMetrics(),
		resumed:  make(chan struct{}),
	}
	t := cfg.Target
	p.target.Store(&t)
	p.shadowSem = make(chan struct{}, maxShadowInFlight)
	p.breaker = newBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, maxBreakerCooldown)
	p.breaker.OnChange = p.breakerChanged
	return p, nil
}

// maxBreakerCooldown caps how long the open breaker waits between probes,
// and so how long results wait after TF Serving is back: a 30 s cap made
// the chaos test's 60 s outage cost up to 30 s more. A probe is one
// GetModelMetadata, nothing a struggling server notices every 5 s.
const maxBreakerCooldown = 5 * time.Second

// CommitInterval is how often each member commits the offsets whose results
// Kafka acked. Everything answered since the last commit is answered again
// after a crash, so this bounds the duplicates of a SIGKILL to about
// CommitInterval times the pool's rate (1 s cost ~20,000 duplicates per
// crash at 20k msg/s); each commit is one small request per member.
const CommitInterval = 100 * time.Millisecond

// tuneConsumer sets what the worker needs from a consumer: 1 MiB per
// partition per fetch with deep per-partition buffers for throughput (4 MiB
// cost more CPU in the broker for no gain), the seed's
// auto.offset.reset=earliest, frequent commits. Each member adds its own
// sticky strategy and instance id (member.run) so a scale step moves as few
// partitions as possible and a restart takes its own back.
//
// It reads committed records only: `inferops dlq replay` writes to the input
// in transactions, and the records of one it aborted (or that a killed
// replay left open) must never be served; records of other producers are
// not transactional and are served as before.
func tuneConsumer(c *sarama.Config) {
	c.Consumer.Return.Errors = true
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = CommitInterval
	c.Consumer.Fetch.Default = 1 << 20
	c.Consumer.Fetch.Min = 1
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	c.ChannelBufferSize = 512
	c.Consumer.Group.Session.Timeout = pipeline.GroupSessionTimeout
	c.Consumer.Group.Heartbeat.Interval = pipeline.GroupHeartbeat
	c.Consumer.Group.Rebalance.Timeout = pipeline.GroupRebalanceTimeout
	// A member's Consume returns on coordinator hiccups; we rejoin ourselves.
	c.Consumer.Group.Rebalance.Retry.Max = 4
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
}

// tuneProducer follows the seed: idempotent, acks=all, zstd, 64 KB batches,
// linger 5 ms. Idempotence needs one in-flight request per connection.
func tuneProducer(c *sarama.Config, maxMessageBytes int) {
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Net.MaxOpenRequests = 1
	c.Producer.Compression = sarama.CompressionZSTD
	// Results are small JSON; zstd's fastest level keeps most of the ratio
	// at a fraction of the default level's CPU (it showed as 7% of a drain).
	c.Producer.CompressionLevel = 1
	c.Producer.Flush.Bytes = 64 << 10
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Producer.Flush.MaxMessages = 0
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Producer.MaxMessageBytes = maxMessageBytes + 64<<10 // room for headers
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.ChannelBufferSize = 4096
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
}

// Start learns the model signature, checks the topics, starts the producer
// and the configured number of members. It fails with an explanation when
// Kafka or TF Serving cannot be reached.
func (p *Pool) Start(ctx context.Context) (err error) {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("worker: pool already started")
	}
	defer func() {
		if err != nil && p.producer == nil {
			p.started.Store(false) // nothing runs yet: Start may be tried again
		}
	}()
	if err := p.loadSignature(ctx, p.Target()); err != nil {
		return err
	}
	client, err := sarama.NewClient(p.kafka.Brokers, p.producerCfg)
	if err != nil {
		return p.kafka.Explain(err)
	}
	parts, err := client.Partitions(p.cfg.Input)
	if err == nil {
		for _, t := range []string{p.cfg.Output, p.cfg.DLQ} {
			if _, e := client.Partitions(t); e != nil {
				err = fmt.Errorf("topic %q: %w", t, e)
				break
			}
		}
	} else {
		err = fmt.Errorf("topic %q: %w", p.cfg.Input, err)
	}
	_ = client.Close()
	if err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("%v (create the topics, or run `inferops serve`, which creates %s/%s/%s; see --input, --output, --dlq)", err, p.cfg.Input, p.cfg.Output, p.cfg.DLQ)
		}
		return p.kafka.Explain(err)
	}
	p.partitions = len(parts)
	prod, err := sarama.NewAsyncProducer(p.kafka.Brokers, p.producerCfg)
	if err != nil {
		return p.kafka.Explain(err)
	}
	p.producer = prod
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.prodWG.Add(2)
	go p.readSuccesses()
	go p.readErrors()
	p.bgWG.Add(1)
	go p.tick()
	n := p.cfg.Workers
	if p.cfg.Idle {
		n = 0
	}
	if n > p.partitions {
		n = p.partitions
		p.event(pipeline.KindScale, fmt.Sprintf("--workers %d is more than the %d partitions of %s: starting %d", p.cfg.Workers, p.partitions, p.cfg.Input, n))
	}
	if err := p.ScaleTo(n); err != nil {
		return err
	}
	p.log.Info("worker pool started", "instance", p.cfg.Instance, "static_membership", p.static, "input", p.cfg.Input, "output", p.cfg.Output, "dlq", p.cfg.DLQ,
		"group", p.cfg.Group, "workers", n, "partitions", p.partitions, "model", p.cfg.Model,
		"inputs", p.schema.Describe(), "outputs", strings.Join(p.outputs, ","), "stand_in", p.standIn, "target", p.Target().String())
	return nil
}

// loadSignature builds the record schema from the model's serving_default
// inputs and picks the outputs results carry (--output-filter, or all).
func (p *Pool) loadSignature(ctx context.Context, t tfserving.Target) error {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := p.tfs.Metadata(mctx, p.cfg.Model, t)
	if err != nil {
		return fmt.Errorf("read the signature of model %q (%s): %w", p.cfg.Model, t.String(), err)
	}
	sig, err := md.ServingDefault()
	if err != nil {
		return fmt.Errorf("model %q: %w", p.cfg.Model, err)
	}
	schema, err := pipeline.NewSchema(sig.InputSpecs(), pipeline.SchemaOptions{IDField: p.cfg.IDField, InputFields: p.cfg.InputFields, ValueFormat: p.cfg.ValueFormat})
	if err != nil {
		return fmt.Errorf("model %q v%d: %w", p.cfg.Model, md.Version, err)
	}
	outputs := p.cfg.OutputFilter
	if len(outputs) == 0 {
		for _, o := range sig.OutputSpecs() {
			outputs = append(outputs, o.Name)
		}
	}
	outputs = slices.Sorted(slices.Values(outputs))
	for i, o := range outputs {
		if _, ok := sig.Outputs[o]; !ok {
			return fmt.Errorf("--output-filter %s: model %q v%d has no output %q (it has %s)", strings.Join(p.cfg.OutputFilter, ","), p.cfg.Model, md.Version, o, aliases(sig.Outputs))
		}
		if i > 0 && outputs[i-1] == o {
			return fmt.Errorf("--output-filter names %q twice", o)
		}
	}
	p.mu.Lock()
	p.schema, p.outputs, p.standIn = schema, outputs, md.StandIn()
	p.outputJSON, p.binary = make([][]byte, len(outputs)), make([]bool, len(outputs))
	for i, o := range outputs {
		p.outputJSON[i] = pipeline.AppendJSONString(nil, o)
		p.binary[i] = tensor.BinaryOutput(o)
	}
	p.modelJSON = pipeline.AppendJSONString(nil, p.cfg.Model)
	p.mu.Unlock()
	return nil
}

// Signature is what the running pool validates records for and writes in
// results: the inputs (with the fields they are read from), the outputs,
// and whether the server says the model is a stand-in. Zero before Start.
func (p *Pool) Signature() Signature {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.schema == nil {
		return Signature{}
	}
	sg := Signature{Outputs: append([]string(nil), p.outputs...), StandIn: p.standIn, IDField: p.schema.IDField(), Raw: p.schema.Raw()}
	for i := range p.schema.Len() {
		spec, field, _ := p.schema.Input(i)
		sg.Inputs = append(sg.Inputs, SignatureInput{TensorSpec: spec, Field: field})
	}
	return sg
}

// Config is the configuration the pool runs with, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Partitions is the number of partitions of the input topic, read at
// Start: the most members that can get work, in this process or the fleet.
func (p *Pool) Partitions() int { return p.partitions }

// Workers is the number of members running in this process.
func (p *Pool) Workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.members)
}

// ScaleTo adds or removes members so n run in this process. Removed members
// finish their in-flight records and commit before leaving the group, so no
// record is lost; the group rebalances their partitions to the others. 0
// stops every member (the backlog waits in Kafka as lag). Members keep
// their slots: scaling 4 -> 3 -> 4 stops w4 and starts w4 again.
func (p *Pool) ScaleTo(n int) error {
	if !p.started.Load() || p.closed.Load() {
		return errors.New("worker: pool is not running")
	}
	if n < 0 {
		return fmt.Errorf("cannot scale to %d workers: want 0 or more", n)
	}
	if n > p.partitions {
		return fmt.Errorf("cannot scale to %d workers: %s has %d partitions, so at most %d members get work (add partitions first)", n, p.cfg.Input, p.partitions, p.partitions)
	}
	p.scaleMu.Lock()
	defer p.scaleMu.Unlock()
	p.mu.Lock()
	cur := len(p.members)
	var stopping []*member
	switch {
	case n > cur:
		for i := cur; i < n; i++ {
			m := p.newMember(i + 1)
			p.members = append(p.members, m)
			m.start()
		}
	case n < cur:
		stopping = append(stopping, p.members[n:]...)
		p.members = p.members[:n]
	}
	if n > 0 {
		p.lastN = n
	}
	p.mu.Unlock()
	if n != cur {
		p.event(pipeline.KindScale, fmt.Sprintf("workers %d -> %d", cur, n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout+2*time.Second)
	defer cancel()
	p.stopMembers(ctx, stopping)
	return nil
}

// stopMembers drains members concurrently (each within ctx), then takes
// them out of the group: a static member's Close does not.
func (p *Pool) stopMembers(ctx context.Context, ms []*member) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.stop(ctx, true)
		}()
	}
	wg.Wait()
	if !p.static || len(ms) == 0 {
		return
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.clientID)
	}
	// Committed first (stop), removed second: a member removed while it
	// still worked would have its last commits refused.
	// Its own short deadline: a drain that used all of ctx must still leave.
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := cluster.RemoveStaticMembers(rctx, p.kafka, p.cfg.Group, ids); err != nil {
		p.countError("consume")
		p.event(pipeline.KindError, fmt.Sprintf("%v: their partitions move to the other members only after the session timeout (%v)", err, p.consumerCfg.Consumer.Group.Session.Timeout))
	}
}

// SetTarget switches the model version (or label) for the next batch. A
// running pool first reads the new target's signature (a few ms): a version
// whose input differs from the one records are validated against would get
// every batch rejected and dead-lettered, so the switch is refused with an
// event instead. When TF Serving cannot answer, the switch happens and the
// Predict retries report why.
func (p *Pool) SetTarget(t tfserving.Target) {
	old := p.Target()
	if old == t {
		return
	}
	if p.started.Load() && !p.closed.Load() && p.schema != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		md, err := p.tfs.Metadata(ctx, p.cfg.Model, t)
		cancel()
		if err == nil {
			if problem := p.signatureFault(md); problem != nil {
				p.event(pipeline.KindError, fmt.Sprintf("not switching to %s %s: %v (restart the worker to serve it)", p.cfg.Model, t, problem))
				return
			}
		}
	}
	p.target.Store(&t)
	p.event(pipeline.KindVersion, fmt.Sprintf("target %s -> %s", old, t))
}

// Target is the model version (or label) batches are sent to.
func (p *Pool) Target() tfserving.Target { return *p.target.Load() }

// Pause stops fetching on every member; in-flight records still finish.
func (p *Pool) Pause() {
	p.mu.Lock()
	was := p.paused
	p.paused = true
	ms := append([]*member(nil), p.members...)
	p.mu.Unlock()
	p.updateGate()
	for _, m := range ms {
		m.pauseFetch()
	}
	if !was {
		p.event(pipeline.KindScale, "paused: fetching stopped")
	}
}

// Resume undoes Pause (and a ScaleTo(0), restoring the last worker count).
func (p *Pool) Resume() {
	p.mu.Lock()
	was := p.paused
	p.paused = false
	ms := append([]*member(nil), p.members...)
	lastN := p.lastN
	p.mu.Unlock()
	if len(ms) == 0 && lastN > 0 {
		if err := p.ScaleTo(lastN); err != nil {
			p.event(pipeline.KindError, "resume: "+err.Error())
		}
		return
	}
	p.updateGate()
	if p.breaker.State() == BreakerClosed {
		for _, m := range ms {
			m.resumeFetch()
		}
	}
	if was {
		p.event(pipeline.KindScale, "resumed")
	}
}

// Paused reports a Pause or zero workers.
func (p *Pool) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused || len(p.members) == 0
}

// fetchPaused is whether fetching must stop: a Pause or an open breaker.
func (p *Pool) fetchPaused() bool {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	return paused || p.breaker.State() != BreakerClosed
}

// updateGate recomputes the gate that ConsumeClaim checks per record. sarama's
// PauseAll only reaches partition consumers that exist, so a session that
// starts during a pause needs this gate to hold its records back.
func (p *Pool) updateGate() {
	stop := p.fetchPaused()
	p.gateMu.Lock()
	defer p.gateMu.Unlock()
	if stop == p.stopped.Load() {
		return
	}
	p.stopped.Store(stop)
	if !stop {
		close(p.resumed)
		p.resumed = make(chan struct{})
	}
}

// waitResumed blocks while fetching is stopped, until done closes.
func (p *Pool) waitResumed(done <-chan struct{}) bool {
	for p.stopped.Load() {
		p.gateMu.Lock()
		ch := p.resumed
		p.gateMu.Unlock()
		if !p.stopped.Load() {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
	return true
}

func (p *Pool) breakerChanged(from, to string) {
	p.metrics.breaker.Set(breakerGauge(to))
	lvl := pipeline.Warn
	if to == BreakerOpen {
		lvl = pipeline.Error
	}
	p.emit(pipeline.KindBreaker, lvl, fmt.Sprintf("TF Serving circuit breaker %s -> %s", from, to))
	p.updateGate()
	p.mu.Lock()
	ms := append([]*member(nil), p.members...)
	paused := p.paused
	p.mu.Unlock()
	for _, m := range ms {
		switch {
		case from == BreakerClosed:
			// Stop reading: the backlog stays in Kafka, memory stays flat.
			m.pauseFetch()
		case to == BreakerClosed && !paused:
			m.resumeFetch()
		}
	}
}

// Close drains: members stop fetching, finish (or hand back) in-flight
// records, commit and leave the group; the producer flushes. It returns
// within ctx's deadline and at most about 10 s.
func (p *Pool) Close(ctx context.Context) error {
	if !p.started.Load() || p.producer == nil {
		return nil // never started, or Start failed before anything ran
	}
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 9500*time.Millisecond)
	defer cancel()
	p.scaleMu.Lock()
	p.mu.Lock()
	ms := p.members
	p.members = nil
	p.mu.Unlock()
	p.stopMembers(ctx, ms)
	p.scaleMu.Unlock()
	// Everything handed to the producer either gets acked or is dropped
	// uncommitted when the deadline passes (the group re-delivers it).
	for p.pending.Load() > 0 && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	p.cancel()
	p.shadowWG.Wait() // shadow Predicts end with the pool's context
	p.producer.AsyncClose()
	done := make(chan struct{})
	go func() { p.prodWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	p.bgWG.Wait()
	left := p.pending.Load()
	p.log.Info("worker pool closed", "consumed", p.consumed.Load(), "produced", p.produced.Load(), "dlq", p.dlq.Load(), "unacked", left)
	if left > 0 {
		return fmt.Errorf("worker: %d results were not acked before the deadline; their inputs stay uncommitted and will be re-delivered", left)
	}
	return nil
}

// readSuccesses acks each answered record to its partition tracker.
func (p *Pool) readSuccesses() {
	defer p.prodWG.Done()
	for msg := range p.producer.Successes() {
		it, ok := msg.Metadata.(*item)
		if !ok {
			continue
		}
		p.acked(it)
		p.pending.Add(-1)
	}
}

// readErrors retries failed produces after a backoff. The record's offset
// stays unmarked (blocking its partition's commits) until a retry succeeds.
func (p *Pool) readErrors() {
	defer p.prodWG.Done()
	for perr := range p.producer.Errors() {
		it, ok := perr.Msg.Metadata.(*item)
		if !ok {
			continue
		}
		p.countError("produce")
		if p.ctx.Err() != nil || it.tr.isRevoked() {
			// Shutting down or the partition moved: hand it back.
			it.tr.end()
			p.pending.Add(-1)
			p.putItem(it)
			continue
		}
		n := it.produceAttempts
		it.produceAttempts++
		if onceASecond(&p.lastProduceEvent) {
			p.event(pipeline.KindError, fmt.Sprintf("produce to %s failed (retrying, commits of %s/%d wait): %v", perr.Msg.Topic, it.topic, it.partition, perr.Err))
		}
		d := p.backoff.delay(n)
		// A fresh message: sarama keeps retry and sequence state in the one
		// it gave back, and may still read it.
		old := perr.Msg
		retry := &sarama.ProducerMessage{Topic: old.Topic, Key: old.Key, Value: old.Value, Headers: old.Headers, Metadata: it}
		go func() {
			if !sleepCtx(p.ctx, d) {
				it.tr.end()
				p.pending.Add(-1)
				return
			}
			defer func() {
				// The producer was closed under us during shutdown.
				if recover() != nil {
					it.tr.end()
					p.pending.Add(-1)
				}
			}()
			p.producer.Input() <- retry
		}()
	}
}

// acked runs when Kafka acked a result or dead letter.
func (p *Pool) acked(it *item) {
	tp := topicPartition{it.topic, it.partition}
	p.doneMu.Lock()
	if it.offset < p.done[tp] {
		p.duplicates.Add(1)
	}
	p.doneMu.Unlock()
	if it.dlq {
		p.dlq.Add(1)
		p.metrics.dlq.Inc()
	} else {
		p.produced.Add(1)
		p.metrics.produced.Inc()
		if !it.ts.IsZero() {
			// The result's timestamp as Kafka stored it (ours, or the
			// broker's with LogAppendTime) minus the input's: what a
			// downstream consumer measures from the two records.
			d := it.msg.Timestamp.Sub(it.ts)
			p.e2eLat.record(d)
			it.vc.e2e.record(d)
			if it.side != nil {
				it.side.e2e.record(d)
			}
			p.metrics.e2e.Observe(d.Seconds())
		}
	}
	it.m.nOut.Add(1)
	it.tr.ack(it.seq)
	it.tr.end()
	p.putItem(it)
}

// onMark remembers the highest offset marked per partition so re-deliveries
// after a rebalance or crash are counted as duplicates.
func (p *Pool) onMark(topic string, partition int32, next int64) {
	tp := topicPartition{topic, partition}
	p.doneMu.Lock()
	if next > p.done[tp] {
		p.done[tp] = next
	}
	p.doneMu.Unlock()
}

func (p *Pool) countError(kind string) {
	p.errMu.Lock()
	p.errs[kind]++
	p.errMu.Unlock()
	p.metrics.errors.WithLabelValues(kind).Inc()
}

// event records something the operator should see, graded by its kind:
// errors are errors, breaker changes and dead letters warnings.
func (p *Pool) event(kind, msg string) {
	lvl := pipeline.Info
	switch kind {
	case pipeline.KindError:
		lvl = pipeline.Error
	case pipeline.KindBreaker, pipeline.KindDLQ:
		lvl = pipeline.Warn
	}
	p.emit(kind, lvl, msg)
}

func (p *Pool) emit(kind string, lvl pipeline.Level, msg string) {
	p.events.add(pipeline.Event{Time: time.Now(), Source: pipeline.SourceWorker, Kind: kind, Level: lvl, Message: msg})
	slvl := slog.LevelInfo
	if lvl > pipeline.Info {
		slvl = slog.LevelWarn
	}
	p.log.Log(context.Background(), slvl, msg, "event", kind)
}

// Events returns the latest events, oldest first.
func (p *Pool) Events() []pipeline.Event { return p.events.list() }

// RecentDLQ returns the latest dead letters, oldest first.
func (p *Pool) RecentDLQ() []pipeline.DeadLetter { return p.recent.list() }

// tick rotates the latency windows and samples rates once a second.
func (p *Pool) tick() {
	defer p.bgWG.Done()
	t := time.NewTicker(windowSlice)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			p.probeIfIdle()
			p.predictLat.rotate()
			p.e2eLat.rotate()
			p.verMu.Lock()
			for _, v := range p.versions {
				v.lat.rotate()
				v.e2e.rotate()
			}
			p.verMu.Unlock()
			p.rotateSplit()
			secs := now.Sub(last).Seconds()
			last = now
			p.mu.Lock()
			ms := append([]*member(nil), p.members...)
			p.mu.Unlock()
			var bat, rows uint64
			for _, m := range ms {
				m.sample(secs)
			}
			for _, m := range ms {
				bat += m.nBatches.Load()
				rows += m.nRows.Load()
			}
			out := p.produced.Load() + p.dlq.Load()
			p.rateMu.Lock()
			p.lastQPS = float64(out-p.prevOut) / secs
			if out < p.prevOut {
				p.lastQPS = 0
			}
			p.prevOut = out
			if db := bat - p.prevBat[0]; bat >= p.prevBat[0] && db > 0 {
				p.lastAvg = float64(rows-p.prevBat[1]) / float64(db)
			}
			p.prevBat = [2]uint64{bat, rows}
			p.rateMu.Unlock()
			p.metrics.workers.Set(float64(len(ms)))
		}
	}
}

// probeIfIdle lets the breaker recover when no batch is left retrying (the
// member that held it was stopped): once the cooldown has passed and nobody
// else probes, a GetModelMetadata call tells whether TF Serving is back.
func (p *Pool) probeIfIdle() {
	if p.breaker.State() == BreakerClosed {
		return
	}
	actx, cancel := context.WithTimeout(p.ctx, 5*time.Millisecond)
	probe, err := p.breaker.acquire(actx)
	cancel()
	if err != nil || !probe {
		return
	}
	mctx, cancel := context.WithTimeout(p.ctx, p.cfg.PredictTimeout)
	_, err = p.tfs.Metadata(mctx, p.cfg.Model, p.Target())
	cancel()
	if err != nil {
		p.breaker.failure(true)
		return
	}
	p.breaker.success(true)
}

// Stats returns an immutable snapshot.
func (p *Pool) Stats() Stats {
	s := Stats{
		Time:       time.Now(),
		Consumed:   p.consumed.Load(),
		Produced:   p.produced.Load(),
		DLQ:        p.dlq.Load(),
		Retries:    p.retries.Load(),
		Duplicates: p.duplicates.Load(),
		Errors:     map[string]uint64{},
		Predict:    p.predictLat.summary(),
		EndToEnd:   p.e2eLat.summary(),
		Breaker:    p.breaker.State(),
		Target:     p.Target().String(),
		Versions:   map[int64]VersionStats{},
		Instance:   p.cfg.Instance,
		Rollout:    p.rolloutStats(),
	}
	p.errMu.Lock()
	for k, v := range p.errs {
		s.Errors[k] = v
	}
	p.errMu.Unlock()
	p.rateMu.Lock()
	s.QPS, s.AvgBatch = p.lastQPS, p.lastAvg
	p.rateMu.Unlock()
	p.verMu.Lock()
	for v, c := range p.versions {
		s.Versions[v] = VersionStats{Count: c.count.Load(), Predict: c.lat.summary(), EndToEnd: c.e2e.summary()}
	}
	p.verMu.Unlock()
	p.mu.Lock()
	ms := append([]*member(nil), p.members...)
	s.Paused = p.paused || len(ms) == 0
	p.mu.Unlock()
	s.Workers = len(ms)
	for _, m := range ms {
		st, lag := m.stats()
		s.Members = append(s.Members, st)
		s.Lag += lag
	}
	return s
}

func (p *Pool) versionCounter(v int64) *versionCounter {
	p.verMu.Lock()
	defer p.verMu.Unlock()
	c := p.versions[v]
	if c == nil {
		c = &versionCounter{lat: newWindow(), e2e: newWindow()}
		p.versions[v] = c
	}
	return c
}

// sortedPartitions is for stable stats output.
func sortedPartitions(m map[int32]*claimState) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
