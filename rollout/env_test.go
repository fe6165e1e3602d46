package rollout

import (
	"context"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// env is the embedded broker and model server with instances of the fleet
// running on them, as `inferops worker` wires them, and steady traffic.
type env struct {
	t     *testing.T
	kafka cluster.Config
	tfs   *tfserving.Client
	width int
}

func newEnv(t *testing.T, models modelserver.Config) *env {
	t.Helper()
	models.RESTAddr = "-"
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &models})
	tfs, width := stacktest.Client(t, st)
	return &env{t: t, kafka: st.Kafka(), tfs: tfs, width: width}
}

func testLog() *slog.Logger {
	if os.Getenv("ROLLOUT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// instance starts a worker pool and its fleet agent on target.
func (e *env) instance(name string, workers int, target tfserving.Target) *worker.Pool {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := worker.Config{Instance: name, Workers: workers, DrainTimeout: 3 * time.Second, Target: target}
	a, err := fleet.NewAgent(fleet.AgentConfig{Kafka: e.kafka, Worker: cfg, TFServing: e.tfs, Version: "test", Logger: testLog().With("instance", name)})
	if err != nil {
		e.t.Fatal(err)
	}
	plan, err := a.Prepare(ctx)
	if err != nil {
		e.t.Fatalf("prepare %s: %v", name, err)
	}
	if err := plan.Configure(&cfg); err != nil {
		e.t.Fatal(err)
	}
	p, err := worker.NewPool(e.kafka, e.tfs, cfg, testLog().With("instance", name))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	a.Run(p, plan)
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		_ = a.Close(ctx)
	})
	return p
}

func (e *env) controller() *fleet.Controller {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := fleet.Open(ctx, fleet.ControllerConfig{Kafka: e.kafka, Who: "tester@test", Logger: testLog()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// traffic produces rate records/s keyed u<i> until the test ends.
func (e *env) traffic(rate int) {
	e.t.Helper()
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	prod, err := sarama.NewAsyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for err := range prod.Errors() {
			e.t.Errorf("produce: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		defer prod.AsyncClose()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start, sent := time.Now(), 0
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				due := int(now.Sub(start).Seconds() * float64(rate))
				for ; sent < due; sent++ {
					id := "u" + strconv.Itoa(sent)
					prod.Input() <- &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(stacktest.SeedRecord(id, sent, e.width))}
				}
			}
		}
	}()
	e.t.Cleanup(func() { close(done); wg.Wait() })
}

// results follows the output topic: every result's time and version.
type results struct {
	mu   sync.Mutex
	rows []result
}

type result struct {
	at      time.Time
	version int64
}

func (e *env) results() *results {
	e.t.Helper()
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := sarama.NewConsumer(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	parts, err := c.Partitions(pipeline.DefaultOutput)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &results{}
	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := c.ConsumePartition(pipeline.DefaultOutput, p, sarama.OffsetOldest)
		if err != nil {
			e.t.Fatal(err)
		}
		pcs = append(pcs, pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range pc.Messages() {
				var v int64
				for _, h := range m.Headers {
					if string(h.Key) == pipeline.HeaderModelVersion {
						v, _ = strconv.ParseInt(string(h.Value), 10, 64)
					}
				}
				r.mu.Lock()
				r.rows = append(r.rows, result{at: m.Timestamp, version: v})
				r.mu.Unlock()
			}
		}()
	}
	e.t.Cleanup(func() {
		for _, pc := range pcs {
			_ = pc.Close()
		}
		wg.Wait()
		_ = c.Close()
	})
	return r
}

// share is the fraction of results in [from, to) served by version v, and
// how many results that is out of.
func (r *results) share(from, to time.Time, v int64) (float64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, hit := 0, 0
	for _, x := range r.rows {
		if x.at.Before(from) || !x.at.Before(to) {
			continue
		}
		n++
		if x.version == v {
			hit++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hit) / float64(n), n
}

func (r *results) since(from time.Time) []result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []result
	for _, x := range r.rows {
		if !x.at.Before(from) {
			out = append(out, x)
		}
	}
	return out
}

// steps records when each step of a rollout began, from the driver's
// progress.
type steps struct {
	mu    sync.Mutex
	began map[int]time.Time
	last  Status
}

func (s *steps) progress(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = st
	if st.Rollout == nil {
		return
	}
	if _, ok := s.began[st.Rollout.Step]; !ok && st.Rollout.Phase == fleet.RolloutCanary {
		s.began[st.Rollout.Step] = st.Rollout.StepAt
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
