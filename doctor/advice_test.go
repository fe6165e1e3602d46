package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestAdviseRules(t *testing.T) {
	growing := []int64{1000, 1500, 2200, 3000}
	flat := []int64{1000, 1010, 990, 1000}
	tests := []struct {
		name string
		e    pipeline.Evidence
		// want lists the rules that must fire, in order; every other rule
		// must stay silent.
		want []string
		// contains: substrings the first advice's Evidence+Fix must hold.
		contains []string
	}{
		{name: "healthy pipeline says nothing", e: pipeline.Evidence{Lag: flat, Members: 12, Partitions: 12, BurrowStatus: "OK", BreakerState: "closed",
			PredictP99: ms(10, 10, 11), AvgBatchSize: 40, MaxBatch: 64, PredictLatency: 5 * time.Millisecond, PredictQPS: 500}},
		{name: "empty evidence says nothing", e: pipeline.Evidence{}},
		{name: "lag growing, idle partitions -> scale workers", e: pipeline.Evidence{Lag: growing, Members: 4, Partitions: 12, Workers: 4},
			want: []string{"lag-scale-workers"}, contains: []string{"1000 -> 3000", "4 members for 12 partitions", "press +", "--workers 12"}},
		{name: "lag growing from the trend alone", e: pipeline.Evidence{LagTrend: 250, Members: 2, Partitions: 12},
			want: []string{"lag-scale-workers"}, contains: []string{"250 records/s"}},
		{name: "lag growing, every partition consumed -> add partitions",
			e:    pipeline.Evidence{Lag: growing, Members: 12, Partitions: 12, Topic: "orders", Brokers: []string{"k1:9092", "k2:9092"}},
			want: []string{"lag-add-partitions"},
			contains: []string{"kafka-topics.sh --bootstrap-server k1:9092,k2:9092 --alter --topic orders --partitions 24",
				"12 members for 12 partitions"}},
		{name: "lag growth below noise floor", e: pipeline.Evidence{Lag: []int64{10, 20, 40}, Members: 1, Partitions: 12}},
		{name: "lag flat", e: pipeline.Evidence{Lag: flat, Members: 1, Partitions: 12}},
		{name: "lag falling", e: pipeline.Evidence{Lag: []int64{5000, 3000, 1000}, Members: 1, Partitions: 12}},
		{name: "too few lag samples and no trend", e: pipeline.Evidence{Lag: []int64{0, 5000}, Members: 1, Partitions: 12}},
		{name: "lag growing but partitions unknown", e: pipeline.Evidence{Lag: growing, Members: 1}},
		{name: "p99 rising with small batches -> batching", e: pipeline.Evidence{PredictP99: ms(10, 14, 20, 30), AvgBatchSize: 1.5, MaxBatch: 64},
			want: []string{"batching"}, contains: []string{"10ms -> 30ms", "1.5 records", "--max-batch 64", "tfserving-batching"}},
		{name: "p99 rising but batches already full", e: pipeline.Evidence{PredictP99: ms(10, 14, 20, 30), AvgBatchSize: 60, MaxBatch: 64}},
		{name: "p99 flat with small batches", e: pipeline.Evidence{PredictP99: ms(10, 11, 10, 11), AvgBatchSize: 1, MaxBatch: 64}},
		{name: "small max-batch scales the small threshold", e: pipeline.Evidence{PredictP99: ms(10, 20, 30), AvgBatchSize: 3, MaxBatch: 8}},
		{name: "slow at low QPS -> model too heavy", e: pipeline.Evidence{PredictLatency: 120 * time.Millisecond, PredictQPS: 5},
			want: []string{"model-too-heavy"}, contains: []string{"120ms", "5.0 calls/s", "GPU", "distillation"}},
		{name: "slow at high QPS is load, not the model", e: pipeline.Evidence{PredictLatency: 120 * time.Millisecond, PredictQPS: 800}},
		{name: "fast at low QPS", e: pipeline.Evidence{PredictLatency: 3 * time.Millisecond, PredictQPS: 5}},
		{name: "DLQ rate above threshold", e: pipeline.Evidence{DLQRate: 25, RecordsPerSec: 1000, Topic: "ai_input", Brokers: []string{"b:9092"},
			DLQTopReasons: []pipeline.ReasonCount{{Reason: "bad json", Count: 900}, {Reason: "wrong feature width", Count: 40}, {Reason: "empty", Count: 3}, {Reason: "other", Count: 1}}},
			want: []string{"dlq-bad-producer"}, contains: []string{"25.0 records/s", "2.5% of input", "bad json x900", "wrong feature width x40", "-t ai_input.dlq"}},
		{name: "DLQ small share but over absolute rate", e: pipeline.Evidence{DLQRate: 5, RecordsPerSec: 100000}, want: []string{"dlq-bad-producer"}},
		{name: "DLQ trickle below both thresholds", e: pipeline.Evidence{DLQRate: 0.5, RecordsPerSec: 1000}},
		{name: "breaker open -> TF Serving down", e: pipeline.Evidence{BreakerState: "open", TFServingAddr: "10.0.0.5:8500"},
			want: []string{"breaker-open"}, contains: []string{"10.0.0.5:8500", "systemctl status tensorflow_model_server"}},
		{name: "breaker half-open is recovering", e: pipeline.Evidence{BreakerState: "half-open"}},
		{name: "Burrow STALL", e: pipeline.Evidence{BurrowStatus: "STALL", Group: "g1", Members: 3},
			want: []string{"consumer-stalled"}, contains: []string{"g1", "same offsets"}},
		{name: "Burrow STOP", e: pipeline.Evidence{BurrowStatus: "STOP", Members: 0},
			want: []string{"consumer-stopped"}, contains: []string{"tf_serving_group", "no commit"}},
		{name: "Burrow WARN alone is the lag rules' job", e: pipeline.Evidence{BurrowStatus: "WARN"}},
		{name: "group not found", e: pipeline.Evidence{BurrowStatus: "NOTFOUND", Group: "tf_serving_grp", Topic: "ai_input", Brokers: []string{"b:9092"}},
			want: []string{"group-not-found"}, contains: []string{"tf_serving_grp has no members and no committed offset on ai_input", "--bootstrap-server b:9092 --list"}},
		{name: "a short rebalance is normal", e: pipeline.Evidence{GroupState: "PreparingRebalance", Rebalancing: 2 * time.Second, RebalanceAwaited: []string{"w1 on /10.0.0.1"}}},
		{name: "rebalance waiting for a dead member", e: pipeline.Evidence{Group: "g1", GroupState: "PreparingRebalance", Rebalancing: 12 * time.Second,
			RebalanceAwaited: []string{"worker-1 on /10.0.0.5", "worker-2 on /10.0.0.6"}},
			want: []string{"rebalance-stuck"}, contains: []string{"group g1 in PreparingRebalance for 12s; waiting for worker-1 on /10.0.0.5, worker-2 on /10.0.0.6",
				"killed without leaving", "10s session and a 30s rebalance timeout", "within 40s", "SIGTERM"}},
		{name: "rebalance already under way at the first look", e: pipeline.Evidence{GroupState: "CompletingRebalance", Rebalancing: 6 * time.Second, RebalanceAtLeast: true},
			want: []string{"rebalance-stuck"}, contains: []string{"CompletingRebalance for at least 6s"}},
		{name: "rebalance past the worker's timeouts: someone alive is not rejoining", e: pipeline.Evidence{GroupState: "PreparingRebalance", Rebalancing: 75 * time.Second,
			RebalanceAwaited: []string{"worker-1 on /10.0.0.5"}},
			want: []string{"rebalance-stuck"}, contains: []string{"for 1m15s", "still runs but does not rejoin", "systemctl restart inferops-worker"}},
		{name: "critical sorts before warnings", e: pipeline.Evidence{BreakerState: "OPEN", Lag: growing, Members: 2, Partitions: 12,
			PredictLatency: time.Second, PredictQPS: 1},
			want: []string{"breaker-open", "lag-scale-workers", "model-too-heavy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Advise(tc.e)
			var names []string
			for _, a := range got {
				names = append(names, a.Rule)
				if a.Title == "" || a.Evidence == "" || a.Fix == "" || a.Severity == "" {
					t.Errorf("rule %s: incomplete advice %+v", a.Rule, a)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("rules fired = %v, want %v\n%+v", names, tc.want, got)
			}
			if len(tc.contains) > 0 {
				text := got[0].Evidence + " | " + got[0].Fix
				for _, s := range tc.contains {
					if !strings.Contains(text, s) {
						t.Errorf("advice %q missing %q", text, s)
					}
				}
			}
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	tests := []struct {
		name string
		t    Thresholds
		ok   bool
	}{
		{"defaults", Thresholds{}, true},
		{"one sample is no trend", Thresholds{MinSamples: 1}, true}, // SetDefaults lifts <=0 only; 1 stays and fails below
		{"fraction above one", Thresholds{SmallBatchFraction: 2}, false},
		{"share above one", Thresholds{DLQShareMax: 1.5}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := tc.t
			th.SetDefaults()
			err := th.Validate()
			if tc.t.MinSamples == 1 {
				if err == nil || !strings.Contains(err.Error(), "MinSamples") {
					t.Fatalf("MinSamples 1: err = %v", err)
				}
				return
			}
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCustomThresholds(t *testing.T) {
	// A stricter latency budget turns a 30 ms model into advice.
	e := pipeline.Evidence{PredictLatency: 30 * time.Millisecond, PredictQPS: 10}
	if len(Advise(e)) != 0 {
		t.Fatalf("default thresholds should accept 30ms")
	}
	got := Thresholds{HeavyLatency: 20 * time.Millisecond}.Advise(e)
	if len(got) != 1 || got[0].Rule != "model-too-heavy" {
		t.Fatalf("custom HeavyLatency: got %+v", got)
	}
}

func BenchmarkAdvise(b *testing.B) {
	e := pipeline.Evidence{Lag: []int64{1, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200}, Members: 4, Partitions: 12,
		PredictP99: ms(10, 12, 14, 16, 18, 20, 22, 24, 26, 30), AvgBatchSize: 2, MaxBatch: 64,
		PredictLatency: 80 * time.Millisecond, PredictQPS: 10, DLQRate: 5, BreakerState: "closed", BurrowStatus: "WARN"}
	b.ReportAllocs()
	for b.Loop() {
		if len(Advise(e)) == 0 {
			b.Fatal("no advice")
		}
	}
}
