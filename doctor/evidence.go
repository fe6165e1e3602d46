package doctor

import (
	"github.com/inferops/inferops/cluster"
)

// KafkaEvidence fills the Kafka half of Evidence from the collector's recent
// snapshots (oldest first), so the console and the triage report derive lag
// trend, members and status the same way. The inference half (Predict
// latency, batches, DLQ, breaker) comes from the worker's stats.
func KafkaEvidence(window []*cluster.Snapshot, brokers []string) Evidence {
	var e Evidence
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
	return e
}

// WorstStatus is the most severe partition status of a snapshot by name
// (STALL, STOP, REWIND say more than the group-level ERR) and that
// partition (-1 when all are OK). It is "" when the group never committed
// on this topic: there is nothing to judge.
func WorstStatus(s *cluster.Snapshot) (string, int32) {
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
	if !committed {
		return "", -1
	}
	return worst.String(), part
}
