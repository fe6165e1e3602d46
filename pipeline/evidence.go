package pipeline

import "time"

// Evidence is what the advice rules (doctor.Advise) read about a live
// pipeline at one refresh: the console and the triage report fill it from
// what they watch. Every field is plain data so the rules stay pure
// functions that are trivial to table-test; a zero field means "not known"
// and a rule that needs it stays silent rather than guessing.
type Evidence struct {
	// Kafka side.
	Topic   string   // input topic, for the kafka-topics.sh command
	Brokers []string // bootstrap brokers, for the kafka-topics.sh command
	Group   string   // consumer group

	// Lag is the group's total lag (records) over the recent window, oldest
	// first. With fewer than MinSamples points LagTrend is used instead.
	Lag []int64
	// LagTrend is the lag growth in records per second (positive = falling
	// behind) when the caller already computed a trend.
	LagTrend float64

	Members    int // consumer group members
	Partitions int // input topic partitions
	Workers    int // configured --workers (the pool target)

	// BurrowStatus is the group's Burrow-style status: OK, WARN, STALL,
	// STOP, REWIND, ERR, NOTFOUND (empty = unknown).
	BurrowStatus string

	// GroupState is the coordinator's state of the group: Stable,
	// PreparingRebalance, CompletingRebalance, Empty, Dead (empty =
	// unknown).
	GroupState string
	// Rebalancing is how long the group has been rebalancing (0 = it is
	// not); RebalanceAtLeast says it already was at the first look, so it
	// may have been longer. RebalanceAwaited names the members it waits
	// for ("worker-1 on /10.0.0.5").
	Rebalancing      time.Duration
	RebalanceAtLeast bool
	RebalanceAwaited []string

	// Inference side.
	PredictP99     []time.Duration // p99 of Predict over the window, oldest first
	AvgBatchSize   float64         // average records per Predict call
	MaxBatch       int             // configured --max-batch
	PredictLatency time.Duration   // recent mean (or p50) Predict latency
	PredictQPS     float64         // Predict calls per second
	RecordsPerSec  float64         // records consumed per second (for the DLQ share)

	// DLQ.
	DLQRate       float64       // records per second sent to the DLQ
	DLQTopReasons []ReasonCount // most frequent DLQ reasons, largest first

	// BreakerState is the worker's circuit breaker towards TF Serving:
	// "closed", "open" or "half-open" (empty = unknown).
	BreakerState  string
	TFServingAddr string
}

// ReasonCount is one DLQ reason and how often it was seen in the window.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}
