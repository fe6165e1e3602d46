// Package worker is the inference worker: a Kafka consumer group that reads
// feature records, micro-batches them across partitions into TF Serving
// Predict calls and writes each result (or a dead letter) back to Kafka,
// at-least-once. A Pool runs N group members in one process and is the
// controller the console and `inferops worker` drive (ScaleTo, SetTarget,
// Pause/Resume) and read (Stats, Events, RecentDLQ).
//
// # The path of one record
//
//	ConsumeClaim (one goroutine per partition): parse + validate the record
//	  for the model's signature (pipeline.Schema, built at Start from
//	  serving_default) into typed columns
//	  -> bad record: DLQ message (original bytes, inferops-error/-source headers)
//	  -> good record: member.in queue
//	batcher (one per member): up to MaxBatch rows from all its partitions,
//	  waiting at most BatchTimeout after the first; the batch is gathered
//	  input by input along the batch dimension (records whose inner sizes
//	  differ go in separate Predicts)
//	predictors (Concurrency per member): Predict with retry, backoff+jitter and
//	  a circuit breaker; an INVALID_ARGUMENT for a target the server confirms
//	  is sound (metadata probe, tfs.go) splits the batch to find bad rows
//	shared async producer (idempotent, acks=all, zstd): result (every output
//	  in TF Serving's REST row format) or DLQ record
//	readSuccesses: ack -> partitionTracker marks the contiguous acked prefix
//
// # Why it cannot lose a record
//
// An offset is marked for commit only when its result or dead letter is
// acked by Kafka, and only once every earlier offset of its partition is too
// (partitionTracker). When a partition moves (rebalance, ScaleTo, shutdown)
// its claim waits a bounded time for its records in flight, then hands the
// rest back uncommitted: the next owner reads them again. The price is
// duplicates, which Stats counts, never gaps.
//
// # Why memory stays bounded when TF Serving is down
//
// Every queue is bounded, so a stuck Predict stops the batcher, then the
// claims, then sarama's fetches. The breaker also closes a gate in front of
// the claims and pauses fetching, so the backlog waits in Kafka (as lag)
// instead of in the heap; a background probe closes it when TF Serving
// answers again.
package worker
