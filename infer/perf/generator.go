package perf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

// load is one timed sending phase (a run, or one step of --find-max): the
// state the generator writes and the collector reads. Results are matched by
// prefix ("<run id>-"), so results of other loads and other producers on the
// same output topic are ignored.
type load struct {
	prefix []byte
	ledger *ledger
	start  time.Time
	lat    *latencyRecorder

	sent, acked, failed          atomic.Uint64
	received, duplicates, strays atomic.Uint64
	deadLettered                 atomic.Uint64
	lastAckNs, lastRecvNs        atomic.Int64 // since start
	firstErr                     atomic.Pointer[string]
}

func newLoad(run string, start time.Time) *load {
	return &load{prefix: []byte(run + "-"), ledger: newLedger(), start: start, lat: newLatencyRecorder()}
}

func (l *load) noteErr(err error) {
	s := err.Error()
	l.firstErr.CompareAndSwap(nil, &s)
}

// maxAtomic raises a to v if v is larger.
func maxAtomic(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// generator is the open-loop load: Streams goroutines, each owning an equal
// share of the rate, hand records to a few sarama AsyncProducers. A stream
// computes each record's scheduled time from the start (phase + k*interval)
// and never waits for results; when it falls behind (the producer pushes
// back) it sends the overdue records at once and their latency still counts
// from when they were due. The streams are goroutines rather than clients
// because a real fleet of producers batches per broker too: 2000 sarama
// clients on two cores would measure the generator, not the pipeline.
type generator struct {
	topic     string
	scenario  Scenario
	builder   *payloadBuilder
	streams   []*stream
	producers []sarama.AsyncProducer
	clients   []sarama.Client
	ld        *load
	seq       atomic.Int64
	sendLag   *shardedHist // actual hand-off minus scheduled time
	ackLat    *shardedHist // Kafka ack minus scheduled time
	readers   sync.WaitGroup
	msgs      sync.Pool
}

// outMsg is a pooled producer message with its buffer: a record is returned
// by sarama on ack, so its memory is reused instead of collected.
type outMsg struct {
	pm    sarama.ProducerMessage
	buf   []byte
	seq   int64
	sched time.Duration
}

// generatorConfig is what a generator needs beyond the scenario.
type generatorConfig struct {
	Topic     string
	Synth     *pipeline.Synth // writes the model's inputs
	Producers int
	Sarama    *sarama.Config // already tuned by tuneProducer
	Brokers   []string
}

// tuneProducer applies the seed's producer settings (acks=all, zstd, 64 KB
// batches, 5 ms linger) to the perf generator. It is not idempotent: perf
// tolerates duplicates (the ledger counts them) and idempotence would allow
// one request in flight per connection, making the generator the bottleneck.
func tuneProducer(c *sarama.Config, payloadBytes int, compression sarama.CompressionCodec) {
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Compression = compression
	c.Producer.Flush.Bytes = 64 << 10
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Producer.Flush.MaxMessages = 0
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 3
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Producer.MaxMessageBytes = payloadBytes + 64<<10
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Net.MaxOpenRequests = 5
	// Small internal queues: when Kafka cannot take the rate, records should
	// wait at the producer's door (where their scheduled time keeps running
	// and the shortfall shows as unsent) rather than pile up by the hundred
	// thousand inside sarama and stretch the run's end by minutes.
	c.ChannelBufferSize = 256
}

func newGenerator(sc Scenario, run string, cfg generatorConfig, ld *load) (*generator, error) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15))
	b := newPayloadBuilder(run, sc.PayloadBytes, cfg.Synth, rng)
	if err := b.checkSize(rng); err != nil {
		return nil, err
	}
	g := &generator{topic: cfg.Topic, scenario: sc, builder: b, ld: ld, sendLag: newShardedHist(), ackLat: newShardedHist()}
	for i := 0; i < sc.Streams; i++ {
		g.streams = append(g.streams, b.newStream(i, rng))
	}
	g.msgs.New = func() any { return &outMsg{buf: make([]byte, 0, sc.PayloadBytes)} }
	n := max(cfg.Producers, 1)
	for i := 0; i < n; i++ {
		client, err := connectLeaders(cfg.Brokers, cfg.Sarama, cfg.Topic)
		if err != nil {
			g.closeProducers()
			return nil, err
		}
		p, err := sarama.NewAsyncProducerFromClient(client)
		if err != nil {
			client.Close()
			g.closeProducers()
			return nil, err
		}
		g.producers = append(g.producers, p)
		g.clients = append(g.clients, client)
		g.readers.Add(2)
		go g.readSuccesses(p, i)
		go g.readErrors(p)
	}
	return g, nil
}

func (g *generator) readSuccesses(p sarama.AsyncProducer, shard int) {
	defer g.readers.Done()
	for pm := range p.Successes() {
		m := pm.Metadata.(*outMsg)
		g.ld.ledger.acked(m.seq)
		g.ld.acked.Add(1)
		now := time.Since(g.ld.start)
		maxAtomic(&g.ld.lastAckNs, int64(now))
		g.ackLat.record(shard, now-m.sched)
		g.msgs.Put(m)
	}
}

func (g *generator) readErrors(p sarama.AsyncProducer) {
	defer g.readers.Done()
	for pe := range p.Errors() {
		m := pe.Msg.Metadata.(*outMsg)
		g.ld.ledger.failed(m.seq)
		g.ld.failed.Add(1)
		g.ld.noteErr(fmt.Errorf("produce to %s: %w", g.topic, pe.Err))
		// Not recycled: sarama may still read a message it reports as
		// failed (the worker's race tests caught it), and failures are rare.
	}
}

// run sends for the scenario's duration (or until ctx ends), then flushes
// and closes the producers; it returns once every record is acked or failed.
func (g *generator) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, s := range g.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.stream(ctx, i, s)
		}()
	}
	wg.Wait()
	g.closeProducers()
}

func (g *generator) closeProducers() {
	for _, p := range g.producers {
		p.AsyncClose()
	}
	g.readers.Wait()
	for _, c := range g.clients {
		c.Close()
	}
	g.producers, g.clients = nil, nil
}

// connectLeaders returns a client already connected to the leader of every
// partition of topic. Otherwise the first records of a run would wait for
// metadata, TCP, TLS and SASL handshakes, and that setup would be charged to
// the pipeline's latency.
func connectLeaders(brokers []string, cfg *sarama.Config, topic string) (sarama.Client, error) {
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, err
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	for _, p := range parts {
		b, err := client.Leader(topic, p)
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("leader of %s/%d: %w", topic, p, err)
		}
		// Connected waits for the handshake Leader started.
		if ok, err := b.Connected(); !ok && err != nil {
			client.Close()
			return nil, fmt.Errorf("connect to the leader of %s/%d at %s: %w", topic, p, b.Addr(), err)
		}
	}
	return client, nil
}

// stream is one producer's open-loop schedule.
func (g *generator) stream(ctx context.Context, idx int, s *stream) {
	sc := g.scenario
	interval := float64(time.Second) * float64(sc.Streams) / sc.Rate
	// Streams start staggered across one interval, so the load is smooth
	// rather than 2000 records every interval on the dot.
	phase := interval * float64(idx) / float64(sc.Streams)
	in := g.producers[idx%len(g.producers)].Input()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	wallStart := g.ld.start.UnixNano()
	for k := 0; ; k++ {
		sched := time.Duration(phase + float64(k)*interval)
		// The load ends at its duration in wall time too: records a stream
		// could not hand over by then (Kafka pushed back) are not sent late
		// after the end; they show as a send rate below the target and fail
		// the run (see Result.Unsent).
		if sched >= sc.Duration || time.Since(g.ld.start) >= sc.Duration {
			return
		}
		if wait := sched - time.Since(g.ld.start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		seq := g.seq.Add(1) - 1
		m := g.msgs.Get().(*outMsg)
		m.seq, m.sched = seq, sched
		m.buf = g.builder.build(m.buf, s, seq, wallStart+int64(sched))
		m.pm = sarama.ProducerMessage{Topic: g.topic, Key: sarama.ByteEncoder(s.key), Value: sarama.ByteEncoder(m.buf), Metadata: m}
		if !g.ld.ledger.sent(seq, int64(sched)) {
			g.msgs.Put(m)
			return // past the ledger's capacity: a billion records in one run
		}
		select {
		case in <- &m.pm:
		case <-ctx.Done():
			return
		}
		g.ld.sent.Add(1)
		g.sendLag.record(idx, time.Since(g.ld.start)-sched)
	}
}
