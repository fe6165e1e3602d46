package fleet

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// env is the embedded broker and model server for a fleet test.
type env struct {
	t     testing.TB
	st    *stack.Stack
	kafka cluster.Config
	tfs   *tfserving.Client
	width int
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-"}})
	tfs, width := stacktest.Client(t, st)
	return &env{t: t, st: st, kafka: st.Kafka(), tfs: tfs, width: width}
}

func testLog() *slog.Logger {
	if os.Getenv("FLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// instance is one worker pool with its agent, as `inferops worker` wires
// them.
type instance struct {
	pool  *worker.Pool
	agent *Agent
	plan  Plan
}

func (e *env) instance(name string, workers int, pinned bool) *instance {
	e.t.Helper()
	in := e.prepared(name, workers, pinned)
	in.agent.Run(in.pool, in.plan)
	return in
}

// prepared is an instance whose agent has not started its loops: a test
// drives its publishing by hand.
func (e *env) prepared(name string, workers int, pinned bool) *instance {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := worker.Config{Instance: name, Workers: workers, DrainTimeout: 3 * time.Second}
	a, err := NewAgent(AgentConfig{Kafka: e.kafka, Worker: cfg, Pinned: pinned, TFServing: e.tfs, Version: "test", Logger: testLog().With("instance", name)})
	if err != nil {
		e.t.Fatal(err)
	}
	plan, err := a.Prepare(ctx)
	if err != nil {
		_ = a.Close(ctx)
		e.t.Fatalf("prepare %s: %v", name, err)
	}
	if err := plan.Configure(&cfg); err != nil {
		e.t.Fatal(err)
	}
	p, err := worker.NewPool(e.kafka, e.tfs, cfg, testLog().With("instance", name))
	if err != nil {
		e.t.Fatal(err)
	}
	if plan.Paused {
		p.Pause()
	}
	if err := p.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	a.mu.Lock()
	a.pool = p
	a.mu.Unlock()
	in := &instance{pool: p, agent: a, plan: plan}
	e.t.Cleanup(func() { in.stop() })
	return in
}

// stop drains the pool and writes the tombstone, as SIGTERM does.
func (in *instance) stop() {
	if in.pool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = in.pool.Close(ctx)
	_ = in.agent.Close(ctx)
	in.pool = nil
}

func (e *env) controller(readOnly string) *Controller {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, ControllerConfig{Kafka: e.kafka, ReadOnly: readOnly, Who: "tester@test", Logger: testLog()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// produce writes n good records with ids prefix0..prefixN-1.
func (e *env) produce(prefix string, n int) {
	e.t.Helper()
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer prod.Close()
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := 0; i < n; i++ {
		id := prefix + strconv.Itoa(i)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(stacktest.SeedRecord(id, i, e.width))})
	}
	if err := prod.SendMessages(msgs); err != nil {
		e.t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
