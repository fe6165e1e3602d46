// Package demo generates realistic inference traffic for the embedded
// default: bursty records for the model's signature on the input topic
// (pipeline.Synth, the same records perf sends), with a hot key (so
// partition skew is visible) and about 1% malformed records of every kind
// the worker refuses for that signature (so the DLQ inspector has something
// to show). It exists so `inferops` on a bare machine shows a living
// pipeline, not an empty screen.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
)

// Config configures the generator.
type Config struct {
	Kafka cluster.Config
	// Topic is the input topic (--input).
	Topic string
	// Rate is the mean target in records/s before bursts; 0 = the default
	// of 500. Adjustable at run time with SetRate / Step.
	Rate float64
	// MalformedRatio is the share of bad records (default 0.01), spread
	// evenly over the kinds the schema can be sent.
	MalformedRatio float64
	// Schema is the model's record schema (from its signature), which the
	// records are made for.
	Schema *pipeline.Schema
	// HotKeyShare is the share of records sent with one fixed key, so one
	// partition runs hot (default 0.15).
	HotKeyShare float64
	// Bursts multiplies the rate by 2-4x for a few seconds about once a
	// minute (default on; tests switch it off for exact counts).
	NoBursts bool
	// Seed makes the traffic reproducible; 0 = random.
	Seed   uint64
	Logger *slog.Logger
}

// MaxRate bounds the keyboard: the demo should show the pipeline, not melt
// the laptop it runs on.
const MaxRate = 50000

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Topic == "" {
		c.Topic = pipeline.DefaultInput
	}
	if c.Rate == 0 {
		c.Rate = 500
	}
	if c.MalformedRatio == 0 {
		c.MalformedRatio = 0.01
	}
	if c.HotKeyShare == 0 {
		c.HotKeyShare = 0.15
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Kafka.SetDefaults()
}

// Validate reports a config the generator cannot run with.
func (c Config) Validate() error {
	if c.Schema == nil {
		return fmt.Errorf("demo traffic: no record schema (build it from the model's signature)")
	}
	if c.Rate < 0 || c.Rate > MaxRate {
		return fmt.Errorf("demo traffic: rate %.0f msg/s: want 0..%d", c.Rate, MaxRate)
	}
	if c.MalformedRatio < 0 || c.MalformedRatio > 1 {
		return fmt.Errorf("demo traffic: malformed ratio %v: want 0..1", c.MalformedRatio)
	}
	if c.HotKeyShare < 0 || c.HotKeyShare > 1 {
		return fmt.Errorf("demo traffic: hot key share %v: want 0..1", c.HotKeyShare)
	}
	return c.Kafka.Validate()
}

// Stats counts what the generator did.
type Stats struct {
	Sent      int64   // records handed to the producer
	Malformed int64   // of which deliberately bad
	Errors    int64   // produce failures
	Rate      float64 // the target rate (before bursts)
	Current   float64 // the instantaneous target including a burst
}

// Generator produces demo traffic until Close.
type Generator struct {
	cfg   Config
	synth *pipeline.Synth
	prod  sarama.AsyncProducer
	rate  atomic.Uint64 // math.Float64bits of the target rate
	cur   atomic.Uint64
	sent  atomic.Int64
	bad   atomic.Int64
	errs  atomic.Int64
	stop  context.CancelFunc
	runWG sync.WaitGroup // the sender: must stop before the producer closes
	wg    sync.WaitGroup // the error reader
	close sync.Once
}

// Start connects a producer and starts sending.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc, err := cfg.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	// The seed's producer tuning, minus idempotence: demo records are
	// disposable and acks=1 keeps the embedded broker's CPU for the worker.
	sc.Producer.RequiredAcks = sarama.WaitForLocal
	sc.Producer.Compression = sarama.CompressionZSTD
	sc.Producer.Flush.Bytes = 64 << 10
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	sc.Producer.Return.Successes = false
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	prod, err := sarama.NewAsyncProducer(cfg.Kafka.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("demo traffic: connect producer: %w", cfg.Kafka.Explain(err))
	}
	rctx, cancel := context.WithCancel(context.Background())
	g := &Generator{cfg: cfg, synth: pipeline.NewSynth(cfg.Schema), prod: prod, stop: cancel}
	g.rate.Store(math.Float64bits(cfg.Rate))
	g.wg.Add(1)
	g.runWG.Add(1)
	go g.readErrors()
	go g.run(rctx)
	return g, nil
}

// Rate is the target rate before bursts.
func (g *Generator) Rate() float64 { return math.Float64frombits(g.rate.Load()) }

// SetRate sets the target rate, clamped to 0..MaxRate.
func (g *Generator) SetRate(r float64) float64 {
	r = math.Max(0, math.Min(MaxRate, r))
	g.rate.Store(math.Float64bits(r))
	return r
}

// rateSteps is the 1-2-5 ladder `[` and `]` move along.
var rateSteps = []float64{0, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000}

// Step moves the rate one step up (+1) or down (-1) the 1-2-5 ladder and
// returns the new rate.
func (g *Generator) Step(dir int) float64 {
	cur := g.Rate()
	i := 0
	for i < len(rateSteps)-1 && rateSteps[i] < cur {
		i++
	}
	// cur is between steps i-1 and i (or exactly on i).
	switch {
	case dir > 0 && rateSteps[i] == cur && i < len(rateSteps)-1:
		i++
	case dir < 0 && i > 0:
		i--
	}
	return g.SetRate(rateSteps[i])
}

// Stats returns the counters.
func (g *Generator) Stats() Stats {
	return Stats{Sent: g.sent.Load(), Malformed: g.bad.Load(), Errors: g.errs.Load(),
		Rate: g.Rate(), Current: math.Float64frombits(g.cur.Load())}
}

// Close stops sending and flushes the producer.
func (g *Generator) Close() error {
	var err error
	g.close.Do(func() {
		g.stop()
		g.runWG.Wait()
		err = g.prod.Close()
		g.wg.Wait()
	})
	return err
}

func (g *Generator) readErrors() {
	defer g.wg.Done()
	for e := range g.prod.Errors() {
		if g.errs.Add(1) == 1 || g.errs.Load()%1000 == 0 {
			g.cfg.Logger.Warn("demo traffic: produce failed", "err", e.Err, "errors", g.errs.Load())
		}
	}
}

// run paces records with a 10 ms tick and a fractional carry, so low rates
// are exact and high rates do not need a timer per record.
func (g *Generator) run(ctx context.Context) {
	defer g.runWG.Done()
	rng := rand.New(rand.NewPCG(g.cfg.Seed, g.cfg.Seed^0x9e3779b97f4a7c15))
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	last := start
	carry := 0.0
	var burstUntil, nextBurst time.Time
	nextBurst = start.Add(time.Duration(20+rng.IntN(40)) * time.Second)
	burstX := 1.0
	var n uint64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(last).Seconds()
			last = now
			if dt > 0.5 { // after a stall, do not dump a backlog in one go
				dt = 0.5
			}
			if !g.cfg.NoBursts {
				if now.After(nextBurst) {
					burstUntil = now.Add(time.Duration(4+rng.IntN(7)) * time.Second)
					burstX = 2 + 2*rng.Float64()
					nextBurst = now.Add(time.Duration(40+rng.IntN(50)) * time.Second)
				}
			}
			rate := g.Rate()
			if !g.cfg.NoBursts {
				// A slow tide (two-minute period) plus the occasional burst:
				// the shape real request traffic has.
				rate *= 1 + 0.25*math.Sin(2*math.Pi*now.Sub(start).Seconds()/120)
				if now.Before(burstUntil) {
					rate *= burstX
				}
			}
			g.cur.Store(math.Float64bits(rate))
			carry += rate * dt
			k := int(carry)
			carry -= float64(k)
			for i := 0; i < k; i++ {
				n++
				msg, bad := g.record(rng, n)
				select {
				case g.prod.Input() <- msg:
					g.sent.Add(1)
					if bad {
						g.bad.Add(1)
					}
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// record builds record n: usually a valid model input, sometimes one of
// the kinds of garbage producers really send.
func (g *Generator) record(rng *rand.Rand, n uint64) (*sarama.ProducerMessage, bool) {
	id := "demo-" + strconv.FormatUint(n, 10)
	key := id
	if rng.Float64() < g.cfg.HotKeyShare {
		key = "hot-customer"
	}
	kinds := g.synth.Malformed()
	bad := len(kinds) > 0 && rng.Float64() < g.cfg.MalformedRatio
	var v []byte
	if bad {
		v = g.synth.MalformedRecord(nil, rng, id, rng.IntN(len(kinds)))
	} else {
		v = g.synth.Record(nil, rng, id)
	}
	return &sarama.ProducerMessage{Topic: g.cfg.Topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(v)}, bad
}
