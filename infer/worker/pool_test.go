package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// testEnv is the embedded broker and model server over loopback TCP.
type testEnv struct {
	t      testing.TB
	broker *cluster.Broker
	kafka  cluster.Config
	model  *modelEnv
	tfs    *tfserving.Client
	width  int
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}}).Broker
	e := &testEnv{t: t, broker: b, kafka: b.ClientConfig()}
	e.model = startModel(t)
	e.tfs = e.model.client
	md, err := e.tfs.Metadata(ctx, pipeline.DefaultModel, tfserving.Target{})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	sd, err := md.ServingDefault()
	if err != nil {
		t.Fatal(err)
	}
	e.width = int(sd.Inputs[model.InputName].Shape[1])
	return e
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (e *testEnv) pool(cfg Config) *Pool {
	e.t.Helper()
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 3 * time.Second
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 200 * time.Millisecond
	}
	if cfg.BreakerCooldown == 0 {
		cfg.BreakerCooldown = 200 * time.Millisecond
	}
	p, err := NewPool(e.kafka, e.tfs, cfg, testLogger(e.t))
	if err != nil {
		e.t.Fatalf("NewPool: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// input describes what was produced: every key, and which are malformed.
type input struct {
	keys map[string]bool // key -> malformed
}

// produce writes n records keyed "k<start+i>" to ai_input; every badEvery-th
// (if > 0) is malformed in one of several ways. The id field equals the key
// for good records, so results can be checked both ways.
func (e *testEnv) produce(start, n, badEvery int, in *input) {
	e.t.Helper()
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Flush.Frequency = time.Millisecond
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer prod.Close()
	bads := []func(id string) string{
		func(id string) string { return `{"id":"` + id + `","features":[1,2` }, // truncated JSON
		func(id string) string { return `{"id":"` + id + `"}` },                // missing features
		func(id string) string { return `{"id":"` + id + `","features":[1,NaN]}` },
		func(id string) string { return `{"id":"` + id + `","features":[1]}` }, // wrong width
		func(id string) string { return `{"id":"` + id + `","features":["x"]}` },
	}
	msgs := make([]*sarama.ProducerMessage, 0, 500)
	flush := func() {
		if len(msgs) == 0 {
			return
		}
		if err := prod.SendMessages(msgs); err != nil {
			e.t.Fatalf("produce: %v", err)
		}
		msgs = msgs[:0]
	}
	for i := start; i < start+n; i++ {
		id := "k" + strconv.Itoa(i)
		bad := badEvery > 0 && i%badEvery == badEvery-1
		var v []byte
		if bad {
			v = []byte(bads[(i/badEvery)%len(bads)](id))
		} else {
			v = goodRecord(id, i, e.width)
		}
		in.keys[id] = bad
		msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(v)})
		if len(msgs) == cap(msgs) {
			flush()
		}
	}
	flush()
}

// goodRecord is the seed's record for id, its features made from n.
func goodRecord(id string, n, width int) []byte { return stacktest.SeedRecord(id, n, width) }

// outcome is what reached ai_output and the DLQ, by key.
type outcome struct {
	out      map[string]int   // key -> times seen in ai_output
	dlq      map[string]int   // key -> times seen in the DLQ
	versions map[string]int64 // key -> model_version of the last result
	reasons  map[string]string
	redrives map[string]string // key -> HeaderRedrives of its dead letter
	dlqSize  map[string]int    // key -> bytes of the DLQ value
}

// collect reads ai_output and ai_input.dlq from the start until every key of
// in is accounted for (or the deadline), then checks the accounting.
func (e *testEnv) collect(in *input, timeout time.Duration) outcome {
	e.t.Helper()
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := sarama.NewConsumer(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	o := outcome{out: map[string]int{}, dlq: map[string]int{}, versions: map[string]int64{}, reasons: map[string]string{}, redrives: map[string]string{}, dlqSize: map[string]int{}}
	var mu sync.Mutex
	missing := func() int {
		n := 0
		for k := range in.keys {
			if o.out[k] == 0 && o.dlq[k] == 0 {
				n++
			}
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, topic := range []string{pipeline.DefaultOutput, pipeline.DefaultDLQ} {
		parts, err := c.Partitions(topic)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, part := range parts {
			pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
			if err != nil {
				e.t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pc.Close()
				for {
					select {
					case <-ctx.Done():
						return
					case m := <-pc.Messages():
						k := string(m.Key)
						mu.Lock()
						if topic == pipeline.DefaultOutput {
							o.out[k]++
							var r struct {
								ID           string    `json:"id"`
								Model        string    `json:"model"`
								ModelVersion int64     `json:"model_version"`
								Predictions  []float64 `json:"predictions"`
							}
							if err := json.Unmarshal(m.Value, &r); err != nil || r.ID != k || r.Model != pipeline.DefaultModel || len(r.Predictions) == 0 {
								e.t.Errorf("bad result for key %s: %s (%v)", k, m.Value, err)
							}
							o.versions[k] = r.ModelVersion
							if h := header(m, pipeline.HeaderModelVersion); h != strconv.FormatInt(r.ModelVersion, 10) {
								e.t.Errorf("key %s: version header %q, body %d", k, h, r.ModelVersion)
							}
						} else {
							o.dlq[k]++
							o.reasons[k] = header(m, pipeline.HeaderError)
							o.redrives[k] = header(m, pipeline.HeaderRedrives)
							o.dlqSize[k] = len(m.Value)
							if !strings.HasPrefix(header(m, pipeline.HeaderSource), pipeline.DefaultInput+"/") {
								e.t.Errorf("DLQ record %s without a source header", k)
							}
						}
						mu.Unlock()
					}
				}
			}()
		}
	}
	for {
		mu.Lock()
		left := missing()
		mu.Unlock()
		if left == 0 {
			// Let late duplicates arrive so they are counted, then stop.
			time.Sleep(200 * time.Millisecond)
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	var lost []string
	for k, bad := range in.keys {
		switch {
		case o.out[k] == 0 && o.dlq[k] == 0:
			lost = append(lost, k)
		case bad && o.out[k] > 0:
			e.t.Errorf("malformed %s produced a result", k)
		case !bad && o.dlq[k] > 0:
			e.t.Errorf("good record %s went to the DLQ (%s)", k, o.reasons[k])
		}
	}
	if len(lost) > 0 {
		if len(lost) > 10 {
			lost = lost[:10]
		}
		e.t.Fatalf("%d of %d inputs never reached %s or %s, e.g. %v", len(lost)-0, len(in.keys), pipeline.DefaultOutput, pipeline.DefaultDLQ, lost)
	}
	return o
}

func (o outcome) duplicates() int {
	n := 0
	for _, c := range o.out {
		n += c - 1
	}
	for _, c := range o.dlq {
		n += c - 1
	}
	return n
}

func header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func newInput() *input { return &input{keys: map[string]bool{}} }

// produceWhile produces batches in the background while fn runs.
func (e *testEnv) produceWhile(in *input, batches, per int, pause time.Duration, badEvery int) (wait func()) {
	done := make(chan struct{})
	var mu sync.Mutex
	local := newInput()
	go func() {
		defer close(done)
		for i := 0; i < batches; i++ {
			e.produce(i*per, per, badEvery, local)
			time.Sleep(pause)
		}
	}()
	return func() {
		<-done
		mu.Lock()
		for k, v := range local.keys {
			in.keys[k] = v
		}
		mu.Unlock()
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPipelineMalformedGoToDLQ(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	e.produce(0, 3000, 100, in) // 1% malformed
	// One valid record over --max-message-bytes: dead-lettered, its copy cut
	// to 64 KiB (the original would be refused by the DLQ topic too).
	big := goodRecord("big", 1, e.width)
	big = append(big[:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", 100_000)+`"}`)...)
	sc := mustSarama(t, e.kafka)
	sc.Producer.Return.Successes = true
	sp, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder("big"), Value: sarama.ByteEncoder(big)}); err != nil {
		t.Fatal(err)
	}
	_ = sp.Close()
	in.keys["big"] = true
	p := e.pool(Config{Workers: 2, MaxMessageBytes: 50_000})
	o := e.collect(in, 60*time.Second)
	if o.reasons["big"] != pipeline.ReasonOversized || o.dlqSize["big"] != pipeline.DLQMaxValue {
		t.Fatalf("oversized record: DLQ reason %q, %d bytes kept", o.reasons["big"], o.dlqSize["big"])
	}
	delete(in.keys, "big")
	bad := 0
	for k, isBad := range in.keys {
		if isBad {
			bad++
			if o.reasons[k] == "" {
				t.Errorf("%s: DLQ record without %s", k, pipeline.HeaderError)
			}
		}
	}
	if bad != 30 {
		t.Fatalf("test produced %d malformed records, want 30", bad)
	}
	waitFor(t, "stats to count every record", 10*time.Second, func() bool {
		s := p.Stats()
		return s.Produced+s.DLQ >= 3000
	})
	s := p.Stats()
	if s.DLQ < 30 || s.Errors[pipeline.ReasonInvalidJSON] == 0 || s.Errors[pipeline.ReasonWrongWidth] == 0 || s.Errors[pipeline.ReasonNonFinite] == 0 {
		t.Fatalf("stats do not count the dead letters: DLQ=%d errors=%v", s.DLQ, s.Errors)
	}
	if len(p.RecentDLQ()) == 0 {
		t.Fatal("RecentDLQ is empty")
	}
	if s.Predict.Count == 0 || s.EndToEnd.Count == 0 || s.AvgBatch < 0 {
		t.Fatalf("latency windows empty: %+v", s)
	}
	t.Logf("dups=%d stats: consumed=%d produced=%d dlq=%d predict p99=%v e2e p99=%v", o.duplicates(), s.Consumed, s.Produced, s.DLQ, s.Predict.P99, s.EndToEnd.P99)
}

func TestPipelineModelServerRestart(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 2})
	wait := e.produceWhile(in, 10, 300, 50*time.Millisecond, 0)
	time.Sleep(150 * time.Millisecond)
	e.model.stop()
	waitFor(t, "the breaker to open", 15*time.Second, func() bool { return p.Stats().Breaker == BreakerOpen })
	time.Sleep(500 * time.Millisecond)
	// While TF Serving is down the backlog stays in Kafka: what the pool
	// holds is bounded by its queues (input queue, batch being filled, batch
	// handed over, one per predictor, per member; one per claim), whatever
	// the backlog.
	s := p.Stats()
	inFlight := 0
	for _, m := range s.Members {
		inFlight += m.InFlight
	}
	if bound := 2*(2+1+1+DefaultConcurrency)*pipeline.DefaultMaxBatch + 12; inFlight > bound {
		t.Fatalf("%d records held in memory while the breaker is open, bound %d", inFlight, bound)
	}
	if !p.fetchPaused() {
		t.Fatal("fetching is not paused while the breaker is open")
	}
	e.model.restart()
	wait()
	o := e.collect(in, 60*time.Second)
	waitFor(t, "the breaker to close", 10*time.Second, func() bool { return p.Stats().Breaker == BreakerClosed })
	s = p.Stats()
	if s.Retries == 0 {
		t.Fatal("no retries counted while TF Serving was down")
	}
	kinds := map[string]bool{}
	for _, ev := range p.Events() {
		kinds[ev.Kind] = true
	}
	if !kinds[pipeline.KindBreaker] || !kinds[pipeline.KindError] {
		t.Fatalf("events lack breaker/error: %v", p.Events())
	}
	t.Logf("records=%d retries=%d duplicates in output=%d", len(in.keys), s.Retries, o.duplicates())
}

func TestPipelineScaleUnderTraffic(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 1})
	wait := e.produceWhile(in, 12, 250, 60*time.Millisecond, 0)
	time.Sleep(200 * time.Millisecond)
	if err := p.ScaleTo(4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 members with partitions", 20*time.Second, func() bool {
		s := p.Stats()
		if len(s.Members) != 4 {
			return false
		}
		total := 0
		for _, m := range s.Members {
			if len(m.Partitions) == 0 || m.ID == "" || m.ClientID == "" {
				return false
			}
			total += len(m.Partitions)
		}
		return total == 12
	})

	time.Sleep(200 * time.Millisecond)
	if err := p.ScaleTo(1); err != nil {
		t.Fatal(err)
	}
	if p.Workers() != 1 {
		t.Fatalf("Workers() = %d after ScaleTo(1)", p.Workers())
	}
	if err := p.ScaleTo(13); err == nil || !strings.Contains(err.Error(), "12 partitions") {
		t.Fatalf("ScaleTo(13) = %v, want an error naming the 12 partitions", err)
	}
	wait()
	o := e.collect(in, 60*time.Second)
	t.Logf("records=%d duplicates=%d (pool counted %d)", len(in.keys), o.duplicates(), p.Stats().Duplicates)
	// Every re-delivery the pool counts is a second copy in the output; it
	// may miss some (a result acked beyond an unacked gap was never marked).
	if d := p.Stats().Duplicates; d > uint64(o.duplicates()) {
		t.Errorf("pool counted %d duplicates, the output holds only %d", d, o.duplicates())
	}
}

func TestPipelineDroppedMember(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 2})
	wait := e.produceWhile(in, 8, 300, 50*time.Millisecond, 0)
	waitFor(t, "traffic", 20*time.Second, func() bool { return p.Stats().Produced > 300 })
	// Kill the second member the way a crash would: nothing more is
	// committed, in-flight work is abandoned.
	p.mu.Lock()
	victim := p.members[1]
	p.members = p.members[:1]
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	victim.stop(ctx, false)
	cancel()
	wait()
	o := e.collect(in, 60*time.Second)
	t.Logf("records=%d duplicates=%d (pool counted %d)", len(in.keys), o.duplicates(), p.Stats().Duplicates)
	if d := p.Stats().Duplicates; d > uint64(o.duplicates()) {
		t.Errorf("pool counted %d duplicates, the output holds only %d", d, o.duplicates())
	}
}

func TestPipelineVersionSwitch(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 2, Target: tfserving.Target{Version: 1}})
	e.produce(0, 1000, 0, in)
	waitFor(t, "the first results", 20*time.Second, func() bool { return p.Stats().Produced >= 1000 })
	p.SetTarget(tfserving.Target{Version: 2})
	if p.Target().Version != 2 {
		t.Fatal("Target() did not change")
	}
	second := newInput()
	e.produce(1000, 1000, 0, second)
	for k := range second.keys {
		in.keys[k] = false
	}
	o := e.collect(in, 60*time.Second)
	for k := range second.keys {
		if o.versions[k] != 2 {
			t.Fatalf("%s produced after the switch was served by version %d", k, o.versions[k])
		}
	}
	v1 := 0
	for i := 0; i < 1000; i++ {
		if o.versions["k"+strconv.Itoa(i)] == 1 {
			v1++
		}
	}
	if v1 == 0 {
		t.Fatal("nothing was served by version 1 before the switch")
	}
	s := p.Stats()
	if s.Versions[1].Count == 0 || s.Versions[2].Count == 0 || s.Target != "2" {
		t.Fatalf("stats versions %+v target %q", s.Versions, s.Target)
	}
}

// TF Serving's INVALID_ARGUMENT for some rows: the batch is split until the
// bad rows are alone, they go to the DLQ, the rest of the batch is served.
// The real model server accepts every finite row of the right width, so the
// rejection is injected in front of it for rows whose first feature is 0.5.
func TestPipelineRejectedRowsSplitOut(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	e.produce(0, 2000, 0, in)
	rejected := map[string]bool{}
	sc, _ := e.kafka.Sarama()
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		id := "rej" + strconv.Itoa(i)
		v := `{"id":"` + id + `","features":[0.5` + strings.Repeat(",0.25", e.width-1) + `]}`
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
		in.keys[id] = true
		rejected[id] = true
	}
	_ = prod.Close()
	p, err := NewPool(e.kafka, e.tfs, Config{Workers: 2, DrainTimeout: 3 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	p.predictHook = func(in map[string]*tensor.Tensor) error {
		f := in[model.InputName]
		rows, width, data := int(f.Shape[0]), int(f.Shape[1]), f.Float32
		calls.Add(1)
		for r := 0; r < rows; r++ {
			if data[r*width] == 0.5 {
				return status.Error(codes.InvalidArgument, "row "+strconv.Itoa(r)+": feature 0 out of range")
			}
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	o := e.collect(in, 60*time.Second)
	for id := range rejected {
		if o.reasons[id] != pipeline.ReasonRejected {
			t.Errorf("%s: DLQ reason %q, want %s", id, o.reasons[id], pipeline.ReasonRejected)
		}
	}
	if p.Stats().Errors[pipeline.ReasonRejected] < 20 {
		t.Fatalf("errors %v", p.Stats().Errors)
	}
	t.Logf("%d Predict calls for %d records", calls.Load(), len(in.keys))
}

// Kafka refuses the results for a while: the produces are retried, nothing
// is committed meanwhile, and every record arrives once Kafka takes writes.
func TestPipelineProduceFailuresBlockCommits(t *testing.T) {
	e := newTestEnv(t)
	fault := e.broker.Cluster().Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: pipeline.DefaultOutput, Err: kerr.NotEnoughReplicas, Count: -1,
	})
	in := newInput()
	e.produce(0, 1000, 0, in)
	p := e.pool(Config{Workers: 2, Group: "produce_fault_group"})
	waitFor(t, "produce errors to reach the worker", 30*time.Second, func() bool { return p.Stats().Errors["produce"] > 0 })
	if s := p.Stats(); s.Produced != 0 {
		t.Fatalf("%d results acked while Kafka refused every write", s.Produced)
	}
	admin, err := sarama.NewClusterAdmin(e.kafka.Brokers, mustSarama(t, e.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	time.Sleep(1500 * time.Millisecond) // > the auto-commit interval
	offs, err := admin.ListConsumerGroupOffsets("produce_fault_group", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, blocks := range offs.Blocks {
		for part, blk := range blocks {
			if blk.Offset > 0 {
				t.Fatalf("partition %d committed offset %d although no result was acked", part, blk.Offset)
			}
		}
	}
	fault.Remove()
	o := e.collect(in, 60*time.Second)
	t.Logf("produce errors=%d duplicates=%d", p.Stats().Errors["produce"], o.duplicates())
}

func mustSarama(t *testing.T, c cluster.Config) *sarama.Config {
	sc, err := c.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// The batch that kept probing TF Serving can leave with its member; the
// breaker must still notice that TF Serving is back.
func TestBreakerRecoversWithoutTraffic(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 1})
	e.model.stop()
	e.produce(0, 200, 0, in)
	waitFor(t, "the breaker to open", 15*time.Second, func() bool { return p.Stats().Breaker == BreakerOpen })
	if err := p.ScaleTo(0); err != nil {
		t.Fatal(err)
	}
	if err := p.ScaleTo(1); err != nil {
		t.Fatal(err)
	}
	e.model.restart()
	waitFor(t, "the breaker to close", 15*time.Second, func() bool { return p.Stats().Breaker == BreakerClosed })
	e.collect(in, 30*time.Second)
}

// An unknown label is TF Serving's INVALID_ARGUMENT too, but about the
// request, not the rows: nothing may go to the DLQ; the worker retries and
// says why until the operator switches to a target that exists.
func TestUnknownLabelIsNotDeadLettered(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 1, Target: tfserving.Target{Version: 1}})
	p.SetTarget(tfserving.Target{Label: "nope"})
	e.produce(0, 200, 0, in)
	waitFor(t, "an event naming the label", 20*time.Second, func() bool {
		for _, ev := range p.Events() {
			if ev.Kind == pipeline.KindError && strings.Contains(ev.Message, "nope") {
				return true
			}
		}
		return false
	})
	if s := p.Stats(); s.DLQ != 0 || s.Produced != 0 {
		t.Fatalf("with an unknown label: %d results, %d dead letters", s.Produced, s.DLQ)
	}
	p.SetTarget(tfserving.Target{})
	o := e.collect(in, 30*time.Second)
	if len(o.dlq) != 0 {
		t.Fatalf("%d records dead-lettered", len(o.dlq))
	}
}

// A new version with another input width must not take the pipeline down
// (every batch rejected and dead-lettered): the switch is refused.
func TestSetTargetRefusesOtherInputWidth(t *testing.T) {
	e := newTestEnv(t)
	narrow, err := model.New([]model.Input{model.DenseInput(model.InputName, 8)}, []model.Output{{Name: model.OutputName, Width: 1}}, []model.Layer{{In: 8, Out: 1, Act: model.Sigmoid, W: make([]float32, 8), B: make([]float32, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := model.Save(filepath.Join(e.model.base, "3"), narrow); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 3 to load", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := e.tfs.Metadata(ctx, pipeline.DefaultModel, tfserving.Target{Version: 3})
		return err == nil
	})
	p := e.pool(Config{Workers: 1, Target: tfserving.Target{Version: 2}})
	p.SetTarget(tfserving.Target{Version: 3})
	if p.Target().Version != 2 {
		t.Fatalf("switched to version %d with another input width", p.Target().Version)
	}
	refused := false
	for _, ev := range p.Events() {
		refused = refused || (ev.Kind == pipeline.KindError && strings.Contains(ev.Message, `its input "features" is DT_FLOAT [-1,8]; records are validated for DT_FLOAT [-1,32]`))
	}
	if !refused {
		t.Fatalf("no event explains the refusal: %v", p.Events())
	}
	p.SetTarget(tfserving.Target{Version: 1}) // same width: allowed
	if p.Target().Version != 1 {
		t.Fatal("switch to version 1 refused")
	}
	in := newInput()
	e.produce(0, 300, 0, in)
	o := e.collect(in, 30*time.Second)
	for k, v := range o.versions {
		if v != 1 {
			t.Fatalf("%s served by version %d", k, v)
		}
	}
}

func TestPauseAndScaleToZero(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	p := e.pool(Config{Workers: 2})
	p.Pause()
	if !p.Paused() || !p.Stats().Paused {
		t.Fatal("Paused() false after Pause")
	}
	e.produce(0, 500, 0, in)
	time.Sleep(1500 * time.Millisecond)
	if s := p.Stats(); s.Produced != 0 {
		t.Fatalf("%d results while paused", s.Produced)
	}
	p.Resume()
	e.collect(in, 30*time.Second)
	if err := p.ScaleTo(0); err != nil {
		t.Fatal(err)
	}
	if p.Workers() != 0 || !p.Paused() {
		t.Fatalf("after ScaleTo(0): workers %d paused %v", p.Workers(), p.Paused())
	}
	more := newInput()
	e.produce(500, 300, 0, more)
	p.Resume() // restores the last worker count
	if p.Workers() != 2 {
		t.Fatalf("Resume after ScaleTo(0) runs %d workers, want 2", p.Workers())
	}
	e.collect(more, 30*time.Second)
}

func TestTwoPoolsShareTheGroup(t *testing.T) {
	e := newTestEnv(t)
	in := newInput()
	a := e.pool(Config{Workers: 1, Instance: "a"})
	b := e.pool(Config{Workers: 1, Instance: "b"})
	waitFor(t, "both pools to own partitions", 20*time.Second, func() bool {
		sa, sb := a.Stats(), b.Stats()
		return len(sa.Members) == 1 && len(sb.Members) == 1 &&
			len(sa.Members[0].Partitions) == 6 && len(sb.Members[0].Partitions) == 6
	})
	e.produce(0, 2000, 0, in)
	e.collect(in, 60*time.Second)
	if a.Stats().Produced == 0 || b.Stats().Produced == 0 {
		t.Fatalf("one pool did all the work: %d / %d", a.Stats().Produced, b.Stats().Produced)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"batch", func(c *Config) { c.MaxBatch = -1 }, "--max-batch"},
		{"timeout", func(c *Config) { c.BatchTimeout = time.Minute }, "--batch-timeout"},
		{"loop", func(c *Config) { c.Output = c.Input }, "--input"},
		{"workers", func(c *Config) { c.Workers = -2 }, "--workers"},
		{"max bytes", func(c *Config) { c.MaxMessageBytes = 3 }, "--max-message-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
}
