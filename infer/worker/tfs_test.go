package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// eventWith reports whether an error event contains every part.
func eventWith(p *Pool, parts ...string) bool {
	for _, ev := range p.Events() {
		if ev.Kind != pipeline.KindError {
			continue
		}
		all := true
		for _, s := range parts {
			all = all && strings.Contains(ev.Message, s)
		}
		if all {
			return true
		}
	}
	return false
}

// checkServed fails unless every key of in reached ai_output exactly as
// counted, none reached the DLQ, and (want > 0) version want served them.
func checkServed(t *testing.T, o outcome, in *input, want int64) {
	t.Helper()
	if len(o.dlq) != 0 {
		t.Fatalf("%d records dead-lettered, e.g. reasons %v", len(o.dlq), o.reasons)
	}
	for k := range in.keys {
		if o.out[k] == 0 {
			t.Fatalf("%s has no result", k)
		}
		if want > 0 && o.versions[k] != want {
			t.Fatalf("%s served by version %d, want %d", k, o.versions[k], want)
		}
	}
}

// An unknown label is INVALID_ARGUMENT from the server, like a bad row. The
// metadata probe fails for it too, so the batch is retried like an outage
// with an event naming the target problem, nothing is dead-lettered, and
// every record is served once the target is set back.
func TestUnknownLabelWaitsForTheTarget(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 1})
	p.SetTarget(tfserving.Target{Label: "nope"})
	since := time.Now()
	in := newInput()
	e.produce(0, 300, 0, in)
	waitFor(t, "an event blaming the label", 20*time.Second, func() bool {
		return eventWith(p, "nope", "the target is at fault, not the records", "GetModelMetadata")
	})
	// Several probe periods of retrying.
	waitFor(t, "retries over 2 probe periods", 20*time.Second, func() bool {
		return time.Since(since) > 2*probeTTL && p.Stats().Retries >= 3
	})
	s := p.Stats()
	calls := p.probes.calls.Load()
	elapsed := time.Since(since)
	if s.DLQ != 0 || s.Produced != 0 || s.Errors[pipeline.ReasonRejected] != 0 {
		t.Fatalf("with an unknown label: %d results, %d dead letters, errors %v", s.Produced, s.DLQ, s.Errors)
	}
	if calls == 0 || calls > uint64(elapsed/probeTTL)+2 {
		t.Fatalf("%d metadata probes in %v for %d retries: the verdict is not cached", calls, elapsed, s.Retries)
	}
	p.SetTarget(tfserving.Target{})
	checkServed(t, e.collect(in, 30*time.Second), in, 2)
	if s := p.Stats(); s.DLQ != 0 || s.Produced < 300 {
		t.Fatalf("after the fix: %d results, %d dead letters", s.Produced, s.DLQ)
	}
}

// A new latest version whose input is narrower than the records the worker
// validated: every Predict is INVALID_ARGUMENT with the kernel's message
// ("Matrix size-incompatible"), which says nothing about targets. The probe
// sees the signature change, so nothing is dead-lettered, and the records
// are served once the version is gone again.
func TestSignatureChangeWaitsForTheTarget(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 1})
	warm := newInput()
	e.produce(0, 100, 0, warm)
	checkServed(t, e.collect(warm, 30*time.Second), warm, 2)

	narrow, err := model.New([]model.Input{model.DenseInput(model.InputName, 8)}, []model.Output{{Name: model.OutputName, Width: 1}}, []model.Layer{{In: 8, Out: 1, Act: model.Sigmoid, W: make([]float32, 8), B: make([]float32, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	v3 := filepath.Join(e.model.base, "3")
	if err := model.Save(v3, narrow); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 3 to serve latest", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		md, err := e.tfs.Metadata(ctx, pipeline.DefaultModel, tfserving.Target{})
		return err == nil && md.Version == 3
	})
	in := newInput()
	e.produce(100, 200, 0, in)
	waitFor(t, "an event blaming version 3's signature", 20*time.Second, func() bool {
		return eventWith(p, "v3", "records are validated for DT_FLOAT [-1,"+strconv.Itoa(e.width)+"]", "not the records")
	})
	if s := p.Stats(); s.DLQ != 0 || s.Errors[pipeline.ReasonRejected] != 0 || s.Produced != 100 {
		t.Fatalf("with a narrower latest: %d results (100 before), %d dead letters, errors %v", s.Produced, s.DLQ, s.Errors)
	}
	if err := os.RemoveAll(v3); err != nil {
		t.Fatal(err)
	}
	checkServed(t, e.collect(in, 30*time.Second), in, 2)
}

// Rows the model rejects are still bisected to the DLQ once the probe finds
// the target sound, and the probe is made about once a second however many
// sub-batches are refused.
func TestRejectedRowsStillGoToDLQ(t *testing.T) {
	e := newTestEnv(t)
	good := newInput()
	e.produce(0, 600, 0, good)
	bad := map[string]bool{}
	sc := mustSarama(t, e.kafka)
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(e.kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		id := "rej" + strconv.Itoa(i)
		v := `{"id":"` + id + `","features":[0.5` + strings.Repeat(",0.25", e.width-1) + `]}`
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
		bad[id] = true
	}
	_ = prod.Close()
	p, err := NewPool(e.kafka, e.tfs, Config{Workers: 2, DrainTimeout: 3 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	p.predictHook = func(in map[string]*tensor.Tensor) error {
		f := in[model.InputName]
		rows, width, data := int(f.Shape[0]), int(f.Shape[1]), f.Float32
		for r := range rows {
			if data[r*width] == 0.5 {
				refused.Add(1)
				// Worded unlike anything the worker could recognise.
				return status.Error(codes.InvalidArgument, "kernel says no")
			}
		}
		return nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	all := newInput()
	for k := range good.keys {
		all.keys[k] = false
	}
	for k := range bad {
		all.keys[k] = true
	}
	o := e.collect(all, 60*time.Second)
	elapsed := time.Since(start)
	for k := range bad {
		if o.dlq[k] != 1 || o.reasons[k] != pipeline.ReasonRejected || o.out[k] != 0 {
			t.Errorf("%s: %d DLQ copies (reason %q), %d results; want one dead letter, %s", k, o.dlq[k], o.reasons[k], o.out[k], pipeline.ReasonRejected)
		}
	}
	for k := range good.keys {
		if o.out[k] == 0 || o.dlq[k] != 0 {
			t.Errorf("%s: %d results, %d dead letters", k, o.out[k], o.dlq[k])
		}
	}
	if got := p.Stats().Errors[pipeline.ReasonRejected]; got != uint64(len(bad)) {
		t.Fatalf("%d rows counted as rejected, want %d", got, len(bad))
	}
	calls, n := p.probes.calls.Load(), refused.Load()
	if calls == 0 || calls > uint64(elapsed/probeTTL)+2 || int64(calls) >= n {
		t.Fatalf("%d metadata probes for %d refused Predicts in %v", calls, n, elapsed)
	}
	t.Logf("%d refused Predicts, %d probes, %v", n, calls, elapsed)
}

// A request the client refuses to send is found by its type: it is neither
// the rows' fault (no DLQ) nor worth asking the server about (no probe),
// and it is retried like an outage with an event saying what is wrong.
func TestMalformedRequestIsNotTheRows(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 1})
	// One row's worth, sent as two rows.
	data := map[string]*tensor.Tensor{model.InputName: {DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, int64(e.width)}, Float32: make([]float32, e.width)}}
	_, err := p.predictOnce(context.Background(), p.Target(), 2, data)
	var re *tfserving.RequestError
	var rej *rejectedError
	var te *targetError
	if !errors.As(err, &re) || errors.As(err, &rej) || errors.As(err, &te) {
		t.Fatalf("predictOnce = %v (%T); want only a *tfserving.RequestError", err, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	_, err = p.predictRetry(ctx, p.Target(), nil, 2, data)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("predictRetry = %v; want it to retry until the deadline", err)
	}
	s := p.Stats()
	if s.Retries == 0 || s.Errors["predict"] == 0 || s.DLQ != 0 || s.Errors[pipeline.ReasonRejected] != 0 {
		t.Fatalf("retries %d, errors %v, DLQ %d", s.Retries, s.Errors, s.DLQ)
	}
	if calls := p.probes.calls.Load(); calls != 0 {
		t.Fatalf("%d metadata probes for a request that was never sent", calls)
	}
	if !eventWith(p, "request not sent", "holds "+strconv.Itoa(e.width)+" values, the shape needs "+strconv.Itoa(2*e.width)) {
		t.Fatalf("no event explains the malformed request: %v", p.Events())
	}
}
