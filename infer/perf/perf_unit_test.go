package perf

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
)

func TestScenarioDefaults(t *testing.T) {
	want := map[string]struct {
		streams, payload int
		slo              time.Duration
		rate             float64
	}{
		Small:  {100, 2048, 50 * time.Millisecond, 55000},
		Medium: {500, 5120, 100 * time.Millisecond, 45000},
		High:   {2000, 10240, 200 * time.Millisecond, 32000},
	}
	for _, s := range Scenarios() {
		w, ok := want[s.Name]
		if !ok {
			t.Fatalf("unexpected scenario %q", s.Name)
		}
		if s.Streams != w.streams || s.PayloadBytes != w.payload || s.SLO != w.slo || s.Rate != w.rate {
			t.Errorf("%s = %+v, want %+v", s.Name, s, w)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s does not validate: %v", s.Name, err)
		}
		got, err := Lookup(strings.ToUpper(s.Name))
		if err != nil || got != s {
			t.Errorf("Lookup(%q) = %+v, %v", s.Name, got, err)
		}
	}
	if _, err := Lookup("huge"); err == nil || !strings.Contains(err.Error(), "--scenario") {
		t.Errorf("Lookup(huge) error %v, want one naming --scenario", err)
	}
}

func TestScenarioValidate(t *testing.T) {
	ok := Scenario{Name: Custom, Streams: 10, PayloadBytes: 1024, SLO: time.Second, Rate: 100, Duration: time.Second}
	for _, tc := range []struct {
		name string
		mod  func(*Scenario)
		flag string
	}{
		{"no streams", func(s *Scenario) { s.Streams = 0 }, "--streams"},
		{"tiny payload", func(s *Scenario) { s.PayloadBytes = 100 }, "--payload-bytes"},
		{"zero rate", func(s *Scenario) { s.Rate = 0 }, "--rate"},
		{"no slo", func(s *Scenario) { s.SLO = 0 }, "--slo"},
		{"short", func(s *Scenario) { s.Duration = time.Millisecond }, "--duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mod(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.flag)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid scenario rejected: %v", err)
	}
}

// Every record must be a valid model input of the scenario's size (the issue
// allows 5%; the builder pads to the exact size).
func TestPayloadSizeAndShape(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			b := newPayloadBuilder("perf20261124T000000abcdef", s.PayloadBytes, seedSynth(t, 32), rng)
			if err := b.checkSize(rng); err != nil {
				t.Fatal(err)
			}
			st := b.newStream(1999, rng)
			for _, seq := range []int64{0, 7, 123456, 1 << 33} {
				rec := b.build(nil, st, seq, time.Now().UnixNano())
				if d := len(rec) - s.PayloadBytes; d < -s.PayloadBytes/20 || d > s.PayloadBytes/20 {
					t.Errorf("seq %d: %d bytes, want %d within 5%%", seq, len(rec), s.PayloadBytes)
				}
				var v struct {
					ID       string    `json:"id"`
					Run      string    `json:"run"`
					Stream   int       `json:"stream"`
					SentAt   int64     `json:"sent_at_ns"`
					Features []float64 `json:"features"`
					Pad      string    `json:"pad"`
				}
				if err := json.Unmarshal(rec, &v); err != nil {
					t.Fatalf("record is not JSON: %v\n%s", err, rec)
				}
				if len(v.Features) != 32 || v.Run != "perf20261124T000000abcdef" || v.Stream != 1999 || v.SentAt == 0 {
					t.Errorf("record fields wrong: %+v", v)
				}
				got, ok := resultID([]byte(`{"id":"`+v.ID+`","model":"my_model","model_version":2,"predictions":[0.5]}`), []byte(v.Run+"-"))
				if !ok || got != seq {
					t.Errorf("resultID of id %q = %d, %v; want %d", v.ID, got, ok, seq)
				}
			}
		})
	}
	b := newPayloadBuilder("r", 600, seedSynth(t, 512), rng)
	if err := b.checkSize(rng); err == nil || !strings.Contains(err.Error(), "--payload-bytes") {
		t.Errorf("600 bytes for 512 features: %v, want an error naming --payload-bytes", err)
	}
}

// The ads model's records: five typed inputs, padded to the scenario's size.
func TestPayloadForTypedInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	schema, err := pipeline.NewSchema([]pipeline.TensorSpec{
		{Name: "user_id", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}},
		{Name: "ad_ids", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1, 8}},
		{Name: "context", DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 16}},
		{Name: "query", DType: tfpb.DataType_DT_STRING, Shape: []int64{-1}},
		{Name: "hour", DType: tfpb.DataType_DT_INT32, Shape: []int64{-1}},
	}, pipeline.SchemaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := newPayloadBuilder("perfx", 2048, pipeline.NewSynth(schema), rng)
	if err := b.checkSize(rng); err != nil {
		t.Fatal(err)
	}
	rec := b.build(nil, b.newStream(3, rng), 42, time.Now().UnixNano())
	var v pipeline.Values
	if len(rec) != 2048 || schema.Parse(rec, &v) != nil || string(v.ID) != `"perfx-42"` {
		t.Fatalf("%d bytes, id %s: %s", len(rec), v.ID, rec)
	}
	clash, _ := pipeline.NewSchema([]pipeline.TensorSpec{{Name: "stream", DType: tfpb.DataType_DT_INT64, Shape: []int64{-1}}}, pipeline.SchemaOptions{})
	if err := newPayloadBuilder("r", 2048, pipeline.NewSynth(clash), rng).checkSize(rng); err == nil || !strings.Contains(err.Error(), "--input-field stream=FIELD") {
		t.Errorf("an input named like a perf field: %v", err)
	}
}

// seedSynth writes my_model-shaped records of width features.
func seedSynth(tb testing.TB, width int) *pipeline.Synth {
	tb.Helper()
	s, err := pipeline.NewSchema([]pipeline.TensorSpec{{Name: pipeline.FieldFeatures, DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, int64(width)}}}, pipeline.SchemaOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return pipeline.NewSynth(s)
}

func TestResultID(t *testing.T) {
	prefix := []byte("run1-")
	for _, tc := range []struct {
		value string
		seq   int64
		ok    bool
	}{
		{`{"id":"run1-42","predictions":[1]}`, 42, true},
		{`{"id":"run1-0"}`, 0, true},
		{`{ "model": "m", "id" : "run1-9" }`, 9, true}, // not the worker's layout: JSON fallback
		{`{"id":"run2-42"}`, 0, false},
		{`{"id":"run1-"}`, 0, false},
		{`{"id":"run1-4x"}`, 0, false},
		{`{"id":17}`, 0, false},
		{`not json`, 0, false},
		{`{"id":"run10-5"}`, 0, false}, // another run whose id extends ours
	} {
		seq, ok := resultID([]byte(tc.value), prefix)
		if seq != tc.seq || ok != tc.ok {
			t.Errorf("resultID(%s) = %d, %v; want %d, %v", tc.value, seq, ok, tc.seq, tc.ok)
		}
	}
}

func TestLedger(t *testing.T) {
	l := newLedger()
	big := int64(3*chunkSize + 5)
	for _, seq := range []int64{0, 1, big} {
		if !l.sent(seq, seq*1000) {
			t.Fatalf("sent(%d) refused", seq)
		}
	}
	l.acked(1)
	l.failed(big)
	for _, tc := range []struct {
		seq   int64
		sched int64
		out   receiveOutcome
	}{
		{0, 0, recvFirst},
		{0, 0, recvDuplicate},
		{1, 1000, recvFirst},
		{big, big * 1000, recvFirst},
		{2, 0, recvUnknown},             // never sent
		{5 * chunkSize, 0, recvUnknown}, // chunk never allocated
		{-1, 0, recvUnknown},
	} {
		sched, out := l.received(tc.seq)
		if out != tc.out || (out == recvFirst && sched != tc.sched) {
			t.Errorf("received(%d) = %d, %v; want %d, %v", tc.seq, sched, out, tc.sched, tc.out)
		}
	}
	if !l.isReceived(1) || l.isReceived(2) {
		t.Error("isReceived wrong")
	}
	if l.sent(int64(maxChunks)*chunkSize, 0) {
		t.Error("sent beyond capacity accepted")
	}
}

func TestLatencySummary(t *testing.T) {
	r := newLatencyRecorder()
	for i := 1; i <= 1000; i++ {
		r.record(time.Duration(i) * time.Millisecond)
	}
	s := r.summary()
	near := func(name string, got, want float64) {
		if got < want*0.99 || got > want*1.01 {
			t.Errorf("%s = %v, want %v within 1%%", name, got, want)
		}
	}
	near("avg", s.Avg, 500.5)
	near("p50", s.P50, 500)
	near("p95", s.P95, 950)
	near("p99", s.P99, 990)
	near("p999", s.P999, 999)
	near("max", s.Max, 1000)
	near("window p99", r.windowP99(), 990)
	r.rotate()
	r.rotate()
	if p := r.windowP99(); p != 0 {
		t.Errorf("window p99 after two rotations = %v, want 0", p)
	}
}

func TestHistoryAppendAndCompare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", HistoryFile)
	if prev, err := LastRun(path, Small); prev != nil || err != nil {
		t.Fatalf("empty history: %v, %v", prev, err)
	}
	base := Result{RunID: "a", Scenario: Small, Streams: 100, PayloadBytes: 2048, TargetRate: 1000,
		KafkaMsgsPerSec: 1000, TFQPS: 1000, Latency: LatencyMS{Avg: 10, P50: 9, P95: 15, P99: 20, P999: 30, Max: 40}, Pass: true}
	other := base
	other.RunID, other.Scenario = "b", Medium
	newer := base
	newer.RunID = "c"
	newer.KafkaMsgsPerSec = 1100 // better
	newer.TFQPS = 1005           // within 2%: same
	newer.Latency.P99 = 25       // worse
	newer.Latency.Avg = 8        // better
	newer.Lost = 3               // worse (from 0)
	for _, r := range []Result{base, other, newer} {
		if err := AppendHistory(path, r); err != nil {
			t.Fatal(err)
		}
	}
	// A torn last line (a run killed mid-write) must not hide the others.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"scenario":"small","run_id":"torn`)
	f.Close()
	runs, skipped, err := ReadHistory(path)
	if err != nil || len(runs) != 3 || skipped != 1 {
		t.Fatalf("ReadHistory = %d runs, %d skipped, %v; want 3, 1, nil", len(runs), skipped, err)
	}
	last, err := LastRun(path, Small)
	if err != nil || last == nil || last.RunID != "c" {
		t.Fatalf("LastRun(small) = %+v, %v; want run c", last, err)
	}
	c := Compare(base, newer)
	if !c.SameTarget || c.PreviousRunID != "a" {
		t.Errorf("comparison header %+v", c)
	}
	for name, want := range map[string]string{
		"kafka_msgs_per_sec": Better, "tf_qps": Same, "latency_p99_ms": Worse,
		"latency_avg_ms": Better, "lost": Worse, "errors": Same, "latency_max_ms": Same,
	} {
		f, ok := c.Figure(name)
		if !ok || f.Verdict != want {
			t.Errorf("%s: %+v, want %s", name, f, want)
		}
	}
	if f, _ := c.Figure("kafka_msgs_per_sec"); f.ChangePct != 10 {
		t.Errorf("kafka change = %v%%, want 10%%", f.ChangePct)
	}
	changed := newer
	changed.TargetRate = 2000
	if Compare(base, changed).SameTarget {
		t.Error("different target rates compared as the same target")
	}
}

func TestFormatTable(t *testing.T) {
	res := []Result{
		{RunID: "r2", Scenario: Small, Streams: 100, PayloadBytes: 2048, TargetRate: 55000, KafkaMsgsPerSec: 54321.4, TFQPS: 52000,
			Latency: LatencyMS{Avg: 40.25, P50: 38, P95: 45.5, P99: 49.9, P999: 60, Max: 120}, SLOms: 50, Pass: true,
			Received: 10, SendRate: 54900, ProduceLatency: LatencyMS{P50: 6, P99: 12.5}, GeneratorLagP99: 0.5, HostLoad1: 7.25, HostCPUs: 2},
		{RunID: "r3", Scenario: High, Streams: 2000, PayloadBytes: 10240, TargetRate: 32000, KafkaMsgsPerSec: 20000, TFQPS: 19000,
			Latency: LatencyMS{Avg: 300, P99: 900}, SLOms: 200, Lost: 12, Pass: false,
			FindMax: &FindMax{MaxRate: 15000, Steps: []FindMaxStep{{Rate: 32000, P99: 900}, {Rate: 15000, P99: 150, Pass: true}}}},
	}
	prev := map[string]Result{Small: {RunID: "r1", Scenario: Small, Streams: 100, PayloadBytes: 2048, TargetRate: 55000, KafkaMsgsPerSec: 50000, TFQPS: 52000,
		Latency: LatencyMS{Avg: 40.25, P50: 38, P95: 45.5, P99: 45, P999: 60, Max: 120}}}
	out := FormatTable(res, prev)
	for _, want := range []string{
		"KAFKA msg/s", "TF QPS", "AVG ms", "P99.9", "SLO ms", "RESULT",
		"54,321", "52,000", "40.2", "PASS", "FAIL", "32,000",
		"high: highest rate meeting the 200 ms SLO: 15,000 msg/s",
		"small vs previous run r1", "small: Kafka produce (scheduled -> acked) p50 6.00 ms, p99 12.5 ms; sent 54,900 msg/s of 55,000 targeted, generator lag p99 0.50 ms; host load 7.2 on 2 CPUs", "Kafka msg/s better (+8.6%)", "p99 worse (+10.9%)", "TF QPS same",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "high vs previous") {
		t.Errorf("compared a scenario with no previous run:\n%s", out)
	}
}

// The --find-max rule against a pipeline of known capacity: it converges to
// within 10% below the capacity inside its budget, and one noisy failure
// above a known pass does not end the climb.
func TestFindMaxSearchRule(t *testing.T) {
	// simulate runs the rule; outcome says whether a step passes and what
	// it achieved.
	simulate := func(start float64, budget int, outcome func(step int, rate float64) (bool, float64)) (rates []float64, lo float64) {
		var s search
		rate := start
		for step := 1; step <= budget; step++ {
			rates = append(rates, rate)
			pass, achieved := outcome(step, rate)
			next, done := s.observe(rate, pass, achieved, budget-step)
			if done {
				break
			}
			rate = next
		}
		return rates, s.lo
	}
	capacity := func(c float64) func(int, float64) (bool, float64) {
		return func(_ int, rate float64) (bool, float64) { return rate <= c, min(rate, c*1.05) }
	}
	for _, tc := range []struct {
		name            string
		start           float64
		budget          int
		outcome         func(int, float64) (bool, float64)
		wantLo, wantMax float64 // lo must land in [wantLo, wantMax]
		wantRates       []float64
	}{
		{"seed rate far above capacity", 55000, 8, capacity(13000), 13000 / 1.1, 13000, nil},
		{"start below capacity doubles", 1000, 8, capacity(5000), 5000 / 1.1, 5000, nil},
		{"every step passes", 100, 3, capacity(1e9), 400, 400, []float64{100, 200, 400}},
		{"nothing passes", 100, 3, capacity(0), 0, 0, []float64{100, 50, 25}},
		{"a noisy failure is repeated", 1000, 8, func(step int, rate float64) (bool, float64) {
			if step == 2 { // 2000: someone else's burst
				return false, rate
			}
			return rate <= 5000, rate
		}, 5000 / 1.1, 5000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rates, lo := simulate(tc.start, tc.budget, tc.outcome)
			if lo < tc.wantLo || lo > tc.wantMax {
				t.Errorf("max rate %v after steps %v, want %v..%v", lo, rates, tc.wantLo, tc.wantMax)
			}
			if tc.wantRates != nil && fmt.Sprint(rates) != fmt.Sprint(tc.wantRates) {
				t.Errorf("steps %v, want %v", rates, tc.wantRates)
			}
			if len(rates) > tc.budget {
				t.Errorf("%d steps, budget %d", len(rates), tc.budget)
			}
		})
	}
	// The noisy step was run twice at the same rate.
	rates, _ := simulate(1000, 8, func(step int, rate float64) (bool, float64) { return step != 2 && rate <= 5000, rate })
	if len(rates) < 3 || rates[1] != 2000 || rates[2] != 2000 {
		t.Errorf("steps %v: want 2000 repeated after its first failure", rates)
	}
}

func TestProducersFor(t *testing.T) {
	tests := []struct {
		rate float64
		want int
	}{
		{0, 1}, {500, 1}, {20_000, 1}, {20_001, 2}, {32_000, 2}, {45_000, 3}, {55_000, 3}, {1e6, MaxAutoProducers},
	}
	for _, tt := range tests {
		if got := ProducersFor(tt.rate); got != tt.want {
			t.Errorf("ProducersFor(%v) = %d, want %d", tt.rate, got, tt.want)
		}
	}
	o := Options{Scenario: Scenario{Name: "small", Streams: 10, PayloadBytes: 2048, Rate: 45_000, Duration: time.Second, SLO: time.Second}}
	o.SetDefaults()
	if o.Producers != 3 {
		t.Fatalf("SetDefaults: %d producers for 45,000 msg/s, want 3", o.Producers)
	}
}
