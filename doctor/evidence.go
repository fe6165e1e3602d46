package doctor

import (
	"sort"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
)

// KafkaEvidence fills the Kafka half of pipeline.Evidence from the collector's recent
// snapshots (oldest first), so the console and the triage report derive lag
// trend, members and status the same way. The inference half (Predict
// latency, batches, DLQ, breaker) comes from the worker's stats.
func KafkaEvidence(window []*cluster.Snapshot, brokers []string) pipeline.Evidence {
	var e pipeline.Evidence
	e.Brokers = brokers
	var last *cluster.Snapshot
	for _, s := range window {
		if s == nil {
			continue
		}
		e.Lag = append(e.Lag, s.TotalLag)
		last = s
	}
	if last == nil {
		return e
	}
	e.Topic, e.Group = last.Topic, last.Group
	e.Members = len(last.Members)
	e.Partitions = len(last.Partitions)
	e.BurrowStatus, _ = WorstStatus(last)
	e.GroupState = last.GroupState
	if rb := last.Rebalance; rb != nil {
		e.Rebalancing = time.Duration(rb.Seconds * float64(time.Second))
		e.RebalanceAtLeast = rb.AtLeast
		for _, m := range rb.Awaited {
			e.RebalanceAwaited = append(e.RebalanceAwaited, cluster.MemberName(m))
		}
	}
	return e
}

// WorstStatus is the most severe status of a snapshot by name and the
// partition that has it (-1 when none does): NOTFOUND for a group that does
// not exist, else the worst partition's (STALL, STOP, REWIND say more than
// the group-level ERR). A partition without a commit where records wait
// counts (the collector gives it STOP or STALL). It is "" only when there
// is nothing to judge: the group never committed on the topic and nothing
// waits there.
func WorstStatus(s *cluster.Snapshot) (string, int32) {
	if s.Status == cluster.StatusNotFound {
		return s.Status.String(), -1
	}
	committed := false
	worst, part := cluster.StatusOK, int32(-1)
	for _, p := range s.Partitions {
		if p.Committed >= 0 {
			committed = true
		}
		if p.Status > worst {
			worst, part = p.Status, p.Partition
		}
	}
	if !committed && worst == cluster.StatusOK {
		return "", -1
	}
	return worst.String(), part
}

// WorkerEvidence fills the inference half of pipeline.Evidence from the pool's
// stats over the recent window (oldest first). maxBatch is --max-batch.
// Rates come from the counters' change across the window, so one snapshot
// gives latency and batching but no DLQ rate.
func WorkerEvidence(window []worker.Stats, maxBatch int) pipeline.Evidence {
	e := pipeline.Evidence{MaxBatch: maxBatch}
	var first, last *worker.Stats
	for i := range window {
		s := &window[i]
		if s.Time.IsZero() {
			continue
		}
		if first == nil {
			first = s
		}
		last = s
		if s.Predict.Count > 0 {
			e.PredictP99 = append(e.PredictP99, s.Predict.P99)
		}
	}
	if last == nil {
		return e
	}
	e.AvgBatchSize = last.AvgBatch
	e.PredictLatency = last.Predict.P50
	if last.AvgBatch > 0 {
		// QPS counts rows answered; each Predict call carries AvgBatch rows.
		e.PredictQPS = last.QPS / last.AvgBatch
	}
	e.BreakerState = last.Breaker
	e.Workers = last.Workers
	dt := last.Time.Sub(first.Time).Seconds()
	if dt <= 0 {
		return e
	}
	// A restarted pool resets its counters: a negative delta is no rate.
	delta := func(a, b uint64) float64 {
		if b < a {
			return 0
		}
		return float64(b - a)
	}
	e.DLQRate = delta(first.DLQ, last.DLQ) / dt
	e.RecordsPerSec = delta(first.Consumed, last.Consumed) / dt
	for _, r := range pipeline.Reasons {
		if d := delta(first.Errors[r], last.Errors[r]); d > 0 {
			e.DLQTopReasons = append(e.DLQTopReasons, pipeline.ReasonCount{Reason: r, Count: int64(d)})
		}
	}
	sort.SliceStable(e.DLQTopReasons, func(i, j int) bool { return e.DLQTopReasons[i].Count > e.DLQTopReasons[j].Count })
	return e
}

// MergeEvidence combines KafkaEvidence and WorkerEvidence into what Advise
// takes: the Kafka fields from k, the inference fields from w.
func MergeEvidence(k, w pipeline.Evidence) pipeline.Evidence {
	k.PredictP99, k.AvgBatchSize, k.MaxBatch = w.PredictP99, w.AvgBatchSize, w.MaxBatch
	k.PredictLatency, k.PredictQPS, k.RecordsPerSec = w.PredictLatency, w.PredictQPS, w.RecordsPerSec
	k.DLQRate, k.DLQTopReasons = w.DLQRate, w.DLQTopReasons
	k.BreakerState = w.BreakerState
	if w.TFServingAddr != "" {
		k.TFServingAddr = w.TFServingAddr
	}
	if w.Workers > 0 {
		k.Workers = w.Workers
	}
	return k
}
