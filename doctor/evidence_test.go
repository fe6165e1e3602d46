package doctor

import (
	"fmt"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
)

func snap(lag int64, members int, parts ...cluster.PartitionLag) *cluster.Snapshot {
	s := &cluster.Snapshot{Topic: "ai_input", Group: "tf_serving_group", TotalLag: lag, Partitions: parts}
	for i := 0; i < members; i++ {
		s.Members = append(s.Members, cluster.Member{ClientID: "w"})
	}
	return s
}

func part(p int32, committed int64, st cluster.Status) cluster.PartitionLag {
	return cluster.PartitionLag{Partition: p, Committed: committed, Status: st}
}

func TestKafkaEvidence(t *testing.T) {
	twelve := func(st3 cluster.Status) []cluster.PartitionLag {
		var ps []cluster.PartitionLag
		for p := int32(0); p < 12; p++ {
			st := cluster.StatusOK
			if p == 3 {
				st = st3
			}
			ps = append(ps, part(p, 10, st))
		}
		return ps
	}
	tests := []struct {
		name       string
		window     []*cluster.Snapshot
		wantStatus string
		wantRules  []string
	}{
		{"empty window", nil, "", nil},
		{"lag growing with 4 of 12 partitions consumed", []*cluster.Snapshot{
			snap(100, 4, twelve(cluster.StatusOK)...), snap(900, 4, twelve(cluster.StatusOK)...), nil, snap(2500, 4, twelve(cluster.StatusWarn)...)},
			"WARN", []string{"lag-scale-workers"}},
		{"stalled partition named, not ERR", []*cluster.Snapshot{snap(50, 12, twelve(cluster.StatusStall)...)}, "STALL", []string{"consumer-stalled"}},
		{"stopped group", []*cluster.Snapshot{snap(50, 0, twelve(cluster.StatusStop)...)}, "STOP", []string{"consumer-stopped"}},
		{"never committed, nothing waiting", []*cluster.Snapshot{snap(0, 0, part(0, -1, cluster.StatusOK), part(1, -1, cluster.StatusOK))}, "", nil},
		{"never committed, records waiting and nobody owns them", []*cluster.Snapshot{snap(70, 0, part(0, -1, cluster.StatusOK), part(1, -1, cluster.StatusStop))},
			"STOP", []string{"consumer-stopped"}},
		{"a group that does not exist", []*cluster.Snapshot{func() *cluster.Snapshot {
			s := snap(70, 0, part(0, -1, cluster.StatusStop))
			s.Status = cluster.StatusNotFound
			return s
		}()}, "NOTFOUND", []string{"group-not-found"}},
		{"a rebalance waiting for a dead member", []*cluster.Snapshot{func() *cluster.Snapshot {
			s := snap(0, 2, twelve(cluster.StatusOK)...)
			s.GroupState = "PreparingRebalance"
			s.Rebalance = &cluster.Rebalance{State: s.GroupState, Seconds: 12, AwaitedKnown: true, Members: 2,
				Awaited: []cluster.Member{{ClientID: "worker-dead", Host: "/10.0.0.9"}}}
			return s
		}()}, "OK", []string{"rebalance-stuck"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := KafkaEvidence(tc.window, []string{"k1:9092"})
			if e.BurrowStatus != tc.wantStatus {
				t.Errorf("BurrowStatus %q, want %q", e.BurrowStatus, tc.wantStatus)
			}
			var got []string
			for _, a := range Advise(e) {
				got = append(got, a.Rule)
			}
			if len(got) != len(tc.wantRules) || (len(got) > 0 && got[0] != tc.wantRules[0]) {
				t.Fatalf("rules %v, want %v (evidence %+v)", got, tc.wantRules, e)
			}
			if last := tc.window[max(len(tc.window)-1, 0):]; len(last) == 1 && last[0].Rebalance != nil &&
				(e.Rebalancing != 12*time.Second || e.GroupState != "PreparingRebalance" || len(e.RebalanceAwaited) != 1 || e.RebalanceAwaited[0] != "worker-dead on /10.0.0.9") {
				t.Errorf("rebalance evidence: state %q for %v awaiting %v", e.GroupState, e.Rebalancing, e.RebalanceAwaited)
			}
			if len(tc.window) > 0 && (e.Topic != "ai_input" || len(e.Brokers) != 1) {
				t.Errorf("topic/brokers not carried: %+v", e)
			}
		})
	}
}

func TestWorkerEvidence(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stat := func(sec int, consumed, dlq uint64, p99ms int, avg, qps float64, breaker string, errs map[string]uint64) worker.Stats {
		return worker.Stats{Time: t0.Add(time.Duration(sec) * time.Second), Consumed: consumed, DLQ: dlq, Errors: errs,
			Predict:  worker.LatencySummary{P50: time.Duration(p99ms) * time.Millisecond / 2, P99: time.Duration(p99ms) * time.Millisecond, Count: 10},
			AvgBatch: avg, QPS: qps, Breaker: breaker, Workers: 4}
	}
	tests := []struct {
		name      string
		window    []worker.Stats
		wantRules []string
		check     func(t *testing.T, e pipeline.Evidence)
	}{
		{"empty", nil, nil, func(t *testing.T, e pipeline.Evidence) {
			if e.MaxBatch != 64 || e.DLQRate != 0 {
				t.Errorf("%+v", e)
			}
		}},
		{"bad producer: DLQ rate and top reasons from counter deltas", []worker.Stats{
			stat(0, 1000, 10, 5, 32, 2000, "closed", map[string]uint64{pipeline.ReasonInvalidJSON: 10, "produce": 3}),
			stat(10, 21000, 510, 5, 32, 2000, "closed", map[string]uint64{pipeline.ReasonInvalidJSON: 410, pipeline.ReasonWrongWidth: 100, "produce": 90}),
		}, []string{"dlq-bad-producer"}, func(t *testing.T, e pipeline.Evidence) {
			if e.DLQRate != 50 || e.RecordsPerSec != 2000 {
				t.Errorf("rates %v dlq/s %v rec/s", e.DLQRate, e.RecordsPerSec)
			}
			if len(e.DLQTopReasons) != 2 || e.DLQTopReasons[0] != (pipeline.ReasonCount{Reason: pipeline.ReasonInvalidJSON, Count: 400}) || e.DLQTopReasons[1].Count != 100 {
				t.Errorf("reasons %+v (produce errors must not count)", e.DLQTopReasons)
			}
		}},
		{"p99 rising while batches stay at one row", []worker.Stats{
			stat(0, 0, 0, 10, 1.2, 300, "closed", nil), stat(5, 1500, 0, 16, 1.1, 300, "closed", nil), stat(10, 3000, 0, 30, 1.0, 300, "closed", nil),
		}, []string{"batching"}, func(t *testing.T, e pipeline.Evidence) {
			if len(e.PredictP99) != 3 || e.PredictQPS != 300 {
				t.Errorf("%+v", e)
			}
		}},
		{"breaker open", []worker.Stats{stat(0, 0, 0, 5, 10, 0, "open", nil)}, []string{"breaker-open"}, nil},
		{"counters reset by a restart give no rate", []worker.Stats{
			stat(0, 5000, 400, 5, 32, 100, "closed", nil), stat(10, 100, 2, 5, 32, 100, "closed", nil),
		}, nil, func(t *testing.T, e pipeline.Evidence) {
			if e.DLQRate != 0 || e.RecordsPerSec != 0 {
				t.Errorf("rates after a reset: %+v", e)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := WorkerEvidence(tc.window, 64)
			e := MergeEvidence(KafkaEvidence([]*cluster.Snapshot{snap(10, 12, twelveOK()...)}, []string{"b:9092"}), w)
			if e.Topic != "ai_input" || e.Members != 12 {
				t.Errorf("Kafka half lost in the merge: %+v", e)
			}
			var got []string
			for _, a := range Advise(e) {
				got = append(got, a.Rule)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantRules) {
				t.Fatalf("rules %v, want %v (evidence %+v)", got, tc.wantRules, e)
			}
			if tc.check != nil {
				tc.check(t, w)
			}
		})
	}
}

func twelveOK() []cluster.PartitionLag {
	var ps []cluster.PartitionLag
	for p := int32(0); p < 12; p++ {
		ps = append(ps, part(p, 10, cluster.StatusOK))
	}
	return ps
}
