package worker

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// sigStack is the embedded broker and model server over TCP, serving the
// shipped models and three stand-ins made from metadata files: TF Serving's
// half_plus_two shape (x DT_FLOAT [-1] -> y DT_FLOAT [-1]), a ranker with
// int64, float [-1, 4] and string inputs and two outputs, and a TFX model
// taking serialized tf.Examples.
type sigStack struct {
	t     *testing.T
	kafka cluster.Config
	tfs   *tfserving.Client
}

func startSigStack(t *testing.T) *sigStack {
	t.Helper()
	file := func(n string) string { return filepath.Join("..", "modelserver", "testdata", "stand-in", n) }
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-", StandIns: []modelserver.StandIn{
		{Name: "half_plus_two", File: file("half_plus_two.json")},
		{Name: "ranker", File: file("ranker.json")},
		{Name: "tfx", File: file("tfx_examples.json")},
	}}})
	c, err := tfserving.Dial(tfserving.Config{Address: st.Addrs.GRPC, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &sigStack{t: t, kafka: st.Kafka(), tfs: c}
}

func (s *sigStack) pool(cfg Config) *Pool {
	s.t.Helper()
	cfg.Workers = max(cfg.Workers, 2)
	cfg.RetryMax, cfg.BreakerCooldown = 200*time.Millisecond, 200*time.Millisecond
	p, err := NewPool(s.kafka, s.tfs, cfg, testLogger(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		s.t.Fatalf("Start: %v", err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// schema is what the pool validates records for.
func (s *sigStack) schema(modelName string, o pipeline.SchemaOptions) *pipeline.Schema {
	s.t.Helper()
	md, err := s.tfs.Metadata(context.Background(), modelName, tfserving.Target{})
	if err != nil {
		s.t.Fatal(err)
	}
	sig, err := md.ServingDefault()
	if err != nil {
		s.t.Fatal(err)
	}
	sc, err := pipeline.NewSchema(sig.InputSpecs(), o)
	if err != nil {
		s.t.Fatal(err)
	}
	return sc
}

// send produces values keyed by their map key.
func (s *sigStack) send(records map[string][]byte) {
	s.t.Helper()
	sc, err := s.kafka.Sarama()
	if err != nil {
		s.t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(s.kafka.Brokers, sc)
	if err != nil {
		s.t.Fatal(err)
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	for k, v := range records {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)})
	}
	if err := prod.SendMessages(msgs); err != nil {
		s.t.Fatalf("produce: %v", err)
	}
}

// read returns the output and DLQ records by key until n arrived.
func (s *sigStack) read(n int, timeout time.Duration) (out, dlq map[string]*sarama.ConsumerMessage) {
	s.t.Helper()
	sc, err := s.kafka.Sarama()
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := sarama.NewConsumer(s.kafka.Brokers, sc)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	out, dlq = map[string]*sarama.ConsumerMessage{}, map[string]*sarama.ConsumerMessage{}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for topic, into := range map[string]map[string]*sarama.ConsumerMessage{pipeline.DefaultOutput: out, pipeline.DefaultDLQ: dlq} {
		parts, err := c.Partitions(topic)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, part := range parts {
			pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
			if err != nil {
				s.t.Fatal(err)
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
						mu.Lock()
						into[string(m.Key)] = m
						mu.Unlock()
					}
				}
			}()
		}
	}
	for {
		mu.Lock()
		got := len(out) + len(dlq)
		mu.Unlock()
		if got >= n || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if len(out)+len(dlq) < n {
		s.t.Fatalf("%d results and %d dead letters, want %d records accounted for", len(out), len(dlq), n)
	}
	return out, dlq
}

// result is a result record with its predictions left raw.
type result struct {
	ID           json.RawMessage `json:"id"`
	Model        string          `json:"model"`
	ModelVersion int64           `json:"model_version"`
	Predictions  json.RawMessage `json:"predictions"`
}

func decodeResult(t *testing.T, m *sarama.ConsumerMessage) result {
	t.Helper()
	var r result
	if err := json.Unmarshal(m.Value, &r); err != nil {
		t.Fatalf("result %s: %v", m.Value, err)
	}
	return r
}

// The shipped ads model end to end: synthesized records of its five typed
// inputs in, results with both outputs keyed by name out; --output-filter
// narrows the results to one output, written bare.
func TestAdsModelEndToEnd(t *testing.T) {
	s := startSigStack(t)
	p := s.pool(Config{Model: model.AdsName})
	if sg := p.Signature(); len(sg.Inputs) != 5 || strings.Join(sg.Outputs, ",") != "ctr,cvr" || sg.StandIn {
		t.Fatalf("signature %+v", sg)
	}
	synth := pipeline.NewSynth(s.schema(model.AdsName, pipeline.SchemaOptions{}))
	rng := rand.New(rand.NewPCG(5, 6))
	records := map[string][]byte{}
	for i := range 200 {
		id := "ad-" + strconv.Itoa(i)
		records[id] = synth.Record(nil, rng, id)
	}
	s.send(records)
	out, dlq := s.read(len(records), 60*time.Second)
	if len(dlq) != 0 {
		t.Fatalf("%d valid ads records dead-lettered", len(dlq))
	}
	ctr := map[string]float64{}
	for k, m := range out {
		r := decodeResult(t, m)
		var preds map[string][]float64
		if err := json.Unmarshal(r.Predictions, &preds); err != nil || string(r.ID) != `"`+k+`"` || r.Model != model.AdsName || r.ModelVersion != 2 {
			t.Fatalf("result %s (%v)", m.Value, err)
		}
		if len(preds) != 2 || len(preds["ctr"]) != 1 || len(preds["cvr"]) != 1 || preds["ctr"][0] <= 0 || preds["ctr"][0] >= 1 || preds["cvr"][0] <= 0 {
			t.Fatalf("predictions %s", r.Predictions)
		}
		ctr[k] = preds["ctr"][0]
	}
	distinct := map[float64]bool{}
	for _, v := range ctr {
		distinct[v] = true
	}
	if len(distinct) < 150 {
		t.Errorf("%d distinct ctr values for 200 different records", len(distinct))
	}
}

func TestOutputFilter(t *testing.T) {
	s := startSigStack(t)
	s.pool(Config{Model: model.AdsName, OutputFilter: []string{"cvr"}})
	synth := pipeline.NewSynth(s.schema(model.AdsName, pipeline.SchemaOptions{}))
	s.send(map[string][]byte{"f-1": synth.Record(nil, rand.New(rand.NewPCG(1, 1)), "f-1")})
	out, _ := s.read(1, 30*time.Second)
	var preds []float64
	if r := decodeResult(t, out["f-1"]); json.Unmarshal(r.Predictions, &preds) != nil || len(preds) != 1 {
		t.Fatalf("one output left: want it bare, got %s", out["f-1"].Value)
	}
	_, err := NewPool(s.kafka, s.tfs, Config{Model: model.AdsName, OutputFilter: []string{"ltv"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := NewPool(s.kafka, s.tfs, Config{Model: model.AdsName, OutputFilter: []string{"ltv"}, Group: "g2"}, nil)
	if err := p.Start(context.Background()); err == nil || !strings.Contains(err.Error(), `--output-filter ltv: model "ads_ctr" v2 has no output "ltv" (it has {"ctr", "cvr"})`) {
		t.Fatalf("unknown output: %v", err)
	}
}

// A stand-in built from half_plus_two's metadata: a scalar input takes a
// bare number, a scalar output comes back bare, and equal inputs give
// equal outputs.
func TestStandInScalarModel(t *testing.T) {
	s := startSigStack(t)
	p := s.pool(Config{Model: "half_plus_two"})
	if !p.Signature().StandIn {
		t.Fatal("the pool does not know it feeds a stand-in")
	}
	s.send(map[string][]byte{
		"h-1": []byte(`{"id":"h-1","x":1.5}`),
		"h-2": []byte(`{"id":"h-2","x":2.5,"ts":1700000000}`),
		"h-3": []byte(`{"id":"h-3","x":1.5}`),
		"h-4": []byte(`{"id":"h-4","x":[1.5]}`),
	})
	out, dlq := s.read(4, 30*time.Second)
	y := map[string]float64{}
	for _, k := range []string{"h-1", "h-2", "h-3"} {
		r := decodeResult(t, out[k])
		if err := json.Unmarshal(r.Predictions, new(float64)); err != nil || r.ModelVersion != 123 {
			t.Fatalf("%s: want a bare number from version 123: %s", k, out[k].Value)
		}
		v, _ := strconv.ParseFloat(string(r.Predictions), 64)
		y[k] = v
	}
	if y["h-1"] != y["h-3"] || y["h-1"] == y["h-2"] {
		t.Errorf("stand-in outputs are not a function of the inputs: %v", y)
	}
	if m := dlq["h-4"]; m == nil || header(m, pipeline.HeaderError) != pipeline.ReasonWrongShape ||
		header(m, pipeline.HeaderErrorDetail) != "x is a list; the model wants one value (shape [-1])" {
		t.Fatalf("a list for a scalar input: %v", m)
	}
}

// A stand-in with int64, float [-1, 4] and string inputs and two outputs,
// fed records that name two of them differently and carry their own id.
func TestStandInTypedModel(t *testing.T) {
	s := startSigStack(t)
	s.pool(Config{Model: "ranker", IDField: "request_id", InputFields: map[string]string{"query": "q", "user_id": "uid"}})
	s.send(map[string][]byte{
		"r-1": []byte(`{"request_id":7,"uid":9223372036854775807,"dense":[0.5,1,2,3],"q":"caf\u00e9 \"shoes\""}`),
		"r-2": []byte(`{"request_id":"r-2","uid":-9223372036854775808,"dense":[0,0,0,0],"q":{"b64":"AAEC"}}`),
		"r-3": []byte(`{"request_id":"r-3","uid":42,"dense":[0,0,0,0],"query":"named like the input, not the field"}`),
	})
	out, dlq := s.read(3, 30*time.Second)
	for k, id := range map[string]string{"r-1": "7", "r-2": `"r-2"`} {
		r := decodeResult(t, out[k])
		var preds struct {
			Score  []float64 `json:"score"`
			TopIDs []int64   `json:"top_ids"`
		}
		if err := json.Unmarshal(r.Predictions, &preds); err != nil || string(r.ID) != id || len(preds.Score) != 1 || len(preds.TopIDs) != 3 {
			t.Fatalf("%s: %s (%v)", k, out[k].Value, err)
		}
	}
	if m := dlq["r-3"]; m == nil || header(m, pipeline.HeaderError) != pipeline.ReasonMissingInput ||
		header(m, pipeline.HeaderErrorDetail) != `no "q" field (input "query")` {
		t.Fatalf("the renamed field missing: %v", m)
	}
}

// Raw values: serialized tf.Example bytes go unchanged into a model whose
// single input is DT_STRING; results have no id of their own, so they get
// topic-partition-offset.
func TestRawExamples(t *testing.T) {
	s := startSigStack(t)
	s.pool(Config{Model: "tfx", ValueFormat: pipeline.ValueFormatRaw})
	synth := pipeline.NewSynth(s.schema("tfx", pipeline.SchemaOptions{ValueFormat: pipeline.ValueFormatRaw}))
	rng := rand.New(rand.NewPCG(9, 9))
	records := map[string][]byte{}
	for i := range 20 {
		records["x-"+strconv.Itoa(i)] = synth.Record(nil, rng, "x-"+strconv.Itoa(i))
	}
	s.send(records)
	out, dlq := s.read(len(records), 30*time.Second)
	if len(dlq) != 0 {
		t.Fatalf("%d tf.Examples dead-lettered", len(dlq))
	}
	for k, m := range out {
		r := decodeResult(t, m)
		src := header(m, pipeline.HeaderSource)
		topic, part, off, ok := pipeline.ParseSource([]byte(src))
		if !ok || string(r.ID) != `"`+topic+"-"+strconv.Itoa(int(part))+"-"+strconv.FormatInt(off, 10)+`"` {
			t.Fatalf("%s: id %s, source %s", k, r.ID, src)
		}
		var preds struct {
			Classes []string  `json:"classes"`
			Scores  []float64 `json:"scores"`
		}
		if err := json.Unmarshal(r.Predictions, &preds); err != nil || len(preds.Classes) != 2 || len(preds.Scores) != 2 || !strings.HasPrefix(preds.Classes[0], "stand-in-") {
			t.Fatalf("%s: %s", k, m.Value)
		}
	}
	// The JSON format refuses to feed raw bytes, and says what to do.
	p, _ := NewPool(s.kafka, s.tfs, Config{Model: model.AdsName, ValueFormat: pipeline.ValueFormatRaw, Group: "raw-ads"}, nil)
	if err := p.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "--value-format raw feeds each record's bytes to a model whose single input is DT_STRING") {
		t.Fatalf("raw into ads_ctr: %v", err)
	}
}

// Every reason a record is dead-lettered for, with a detail naming the
// input, while the good records of the same batches are served. The seed's
// model keeps its reasons and details byte for byte.
func TestEveryDLQReason(t *testing.T) {
	s := startSigStack(t)
	p := s.pool(Config{Model: model.AdsName, MaxMessageBytes: 4096})
	p.predictHook = func(in map[string]*tensor.Tensor) error {
		for _, q := range in["query"].Strings {
			if string(q) == "refused by the model" {
				return status.Error(codes.InvalidArgument, "the kernel says no")
			}
		}
		return nil
	}
	good := `"user_id":42,"ad_ids":[1,2,3,4,5,6,7,8],"context":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"hour":13`
	rec := func(id, fields string) []byte { return []byte(`{"id":"` + id + `",` + fields + `}`) }
	with := func(old, new string) string { return strings.Replace(good+`,"query":"q"`, old, new, 1) }
	cases := map[string]struct {
		value          []byte
		reason, detail string
	}{
		"missing":   {rec("missing", good), pipeline.ReasonMissingInput, `no "query" field`},
		"null":      {rec("null", good+`,"query":null`), pipeline.ReasonMissingInput, `"query" is null`},
		"type":      {rec("type", with(`"user_id":42`, `"user_id":"42"`)), pipeline.ReasonWrongType, `user_id = "42" is not an integer (DT_INT64)`},
		"strtype":   {rec("strtype", good+`,"query":7`), pipeline.ReasonWrongType, `query = 7 is not a string or {"b64": "..."} (DT_STRING)`},
		"shape":     {rec("shape", with(`[1,2,3,4,5,6,7,8]`, `[1,2,3]`)), pipeline.ReasonWrongShape, `ad_ids has 3 values, the model wants 8 (shape [-1,8])`},
		"range":     {rec("range", with(`"user_id":42`, `"user_id":9223372036854775808`)), pipeline.ReasonOutOfRange, `user_id = 9223372036854775808 is out of range for DT_INT64 (-9223372036854775808..9223372036854775807)`},
		"range32":   {rec("range32", with(`"hour":13`, `"hour":2147483648`)), pipeline.ReasonOutOfRange, `hour = 2147483648 is out of range for DT_INT32 (-2147483648..2147483647)`},
		"nan":       {rec("nan", with(`"context":[0,`, `"context":[NaN,`)), pipeline.ReasonNonFinite, `context[0] is NaN`},
		"json":      {[]byte(`{"id":"json",` + good), pipeline.ReasonInvalidJSON, `at byte`},
		"id":        {[]byte(`{"id":{"a":1},` + good + `,"query":"q"}`), pipeline.ReasonBadID, `"id" must be a string or a number`},
		"oversized": {rec("oversized", good+`,"query":"q","pad":"`+strings.Repeat("x", 5000)+`"`), pipeline.ReasonOversized, `> --max-message-bytes 4096`},
		"refused":   {rec("refused", good+`,"query":"refused by the model"`), pipeline.ReasonRejected, `the kernel says no`},
	}
	records := map[string][]byte{}
	for k, c := range cases {
		records[k] = c.value
	}
	for i := range 20 {
		id := "ok-" + strconv.Itoa(i)
		records[id] = rec(id, good+`,"query":"fine `+id+`"`)
	}
	s.send(records)
	out, dlq := s.read(len(records), 60*time.Second)
	for k, c := range cases {
		m := dlq[k]
		if m == nil {
			t.Errorf("%s: no dead letter (result %v)", k, out[k] != nil)
			continue
		}
		if r, d := header(m, pipeline.HeaderError), header(m, pipeline.HeaderErrorDetail); r != c.reason || !strings.Contains(d, c.detail) {
			t.Errorf("%s: %s: %s\nwant %s: ...%s...", k, r, d, c.reason, c.detail)
		}
	}
	for i := range 20 {
		if id := "ok-" + strconv.Itoa(i); out[id] == nil {
			t.Errorf("good record %s has no result: a bad record poisoned its batch", id)
		}
	}
	st := p.Stats()
	for _, r := range []string{pipeline.ReasonMissingInput, pipeline.ReasonWrongType, pipeline.ReasonWrongShape, pipeline.ReasonOutOfRange, pipeline.ReasonNonFinite, pipeline.ReasonRejected} {
		if st.Errors[r] == 0 {
			t.Errorf("no %s counted: %v", r, st.Errors)
		}
	}
}

// The seed's model keeps its reasons and details exactly, and its result
// exactly: a bare [score] per record.
func TestSeedRecordsUnchanged(t *testing.T) {
	s := startSigStack(t)
	s.pool(Config{Model: model.Name})
	feats := make([]string, model.Width)
	for i := range feats {
		feats[i] = "0.5"
	}
	good := `"features":[` + strings.Join(feats, ",") + `]`
	cases := map[string]struct {
		value          string
		reason, detail string
	}{
		"missing": {`{"id":"missing"}`, pipeline.ReasonMissingFeatures, `no "features" key`},
		"empty":   {`{"id":"empty","features":[]}`, pipeline.ReasonMissingFeatures, `"features" is empty`},
		"width":   {`{"id":"width","features":[1,2]}`, pipeline.ReasonWrongWidth, `2 features, the model wants 32`},
		"string":  {`{"id":"string","features":["x"]}`, pipeline.ReasonNonNumeric, `features[0] = "x" is not a number`},
		"object":  {`{"id":"object","features":{"a":1}}`, pipeline.ReasonNonNumeric, `"features" is an object; want an array of numbers`},
		"nan":     {`{"id":"nan","features":[1,NaN]}`, pipeline.ReasonNonFinite, `features[1] is NaN`},
		"big":     {`{"id":"big","features":[1e39]}`, pipeline.ReasonNonFinite, `features[0] = 1e39 overflows float32`},
		"json":    {`{"id":"json","features":[1,2`, pipeline.ReasonInvalidJSON, `want ',' or ']' in "features" at byte 28`},
		"id":      {`{"id":[1],` + good + `}`, pipeline.ReasonBadID, `"id" must be a string or a number`},
	}
	records := map[string][]byte{"ok": []byte(`{"id":"ok",` + good + `}`)}
	for k, c := range cases {
		records[k] = []byte(c.value)
	}
	s.send(records)
	out, dlq := s.read(len(records), 30*time.Second)
	for k, c := range cases {
		m := dlq[k]
		if m == nil {
			t.Errorf("%s: no dead letter", k)
			continue
		}
		if r, d := header(m, pipeline.HeaderError), header(m, pipeline.HeaderErrorDetail); r != c.reason || d != c.detail {
			t.Errorf("%s: %s: %q, want %s: %q", k, r, d, c.reason, c.detail)
		}
	}
	r := decodeResult(t, out["ok"])
	var score []float64
	if err := json.Unmarshal(r.Predictions, &score); err != nil || len(score) != 1 || math.IsNaN(score[0]) ||
		!strings.HasPrefix(string(out["ok"].Value), `{"id":"ok","model":"my_model","model_version":2,"predictions":[0.`) {
		t.Fatalf("seed result %s", out["ok"].Value)
	}
}
