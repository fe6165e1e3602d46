package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// TopicSpec is a topic inferops creates when it is missing (on the embedded
// broker and on a real cluster alike; an existing topic is never changed).
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16             // 0 = the cluster default
	Configs           map[string]string // topic-level configs, e.g. retention.bytes
}

// Validate checks a spec before it reaches a broker.
func (s TopicSpec) Validate() error {
	if s.Name == "" {
		return errors.New("topic name is empty")
	}
	if s.Partitions <= 0 {
		return fmt.Errorf("topic %s: partitions must be positive, got %d", s.Name, s.Partitions)
	}
	return nil
}

// Retention bounds what a long-running demo keeps. kfake (like Kafka) trims
// only topics with topic-level retention configs, and only whole segments,
// so all three go on every topic we create.
type Retention struct {
	Bytes        int64         // per partition; retention.bytes
	Time         time.Duration // retention.ms
	SegmentBytes int64         // segment.bytes: the trimming granularity
}

// DefaultRetention keeps the seed's 72 h but caps each partition at 64 MiB so
// the 27 default partitions stay under ~2 GB on a laptop.
var DefaultRetention = Retention{Bytes: 64 << 20, Time: 72 * time.Hour, SegmentBytes: 16 << 20}

// Configs renders r as topic-level configs.
func (r Retention) Configs() map[string]string {
	m := map[string]string{}
	if r.Bytes != 0 {
		m["retention.bytes"] = strconv.FormatInt(r.Bytes, 10)
	}
	if r.Time != 0 {
		m["retention.ms"] = strconv.FormatInt(r.Time.Milliseconds(), 10)
	}
	if r.SegmentBytes != 0 {
		m["segment.bytes"] = strconv.FormatInt(r.SegmentBytes, 10)
	}
	return m
}

// MaxMessageBytes is the seed's message.max.bytes (2,000,000): the pipeline
// topics accept records that large, and the worker dead-letters larger ones.
const MaxMessageBytes = DefaultMaxMessageBytes

// DLQMaxMessageBytes leaves room on the DLQ for a maximal input record plus
// the reason and source headers the worker adds (the seed's
// replica.fetch.max.bytes, 3,000,000, still fetches it).
const DLQMaxMessageBytes = 2_500_000

// Topics are the seed's topics: ai_input (12), ai_output (12) and
// ai_input.dlq (3), each with the given retention and the seed's record size
// limit, so doctor finds the embedded default tuned as it recommends.
func Topics(r Retention) []TopicSpec {
	with := func(maxBytes int) map[string]string {
		m := r.Configs()
		m["max.message.bytes"] = strconv.Itoa(maxBytes)
		return m
	}
	return []TopicSpec{
		{Name: DefaultInput, Partitions: InputPartitions, Configs: with(MaxMessageBytes)},
		{Name: DefaultOutput, Partitions: OutputPartitions, Configs: with(MaxMessageBytes)},
		{Name: DefaultDLQ, Partitions: DLQPartitions, Configs: with(DLQMaxMessageBytes)},
	}
}

// FleetRetention is how long the fleet topic keeps telemetry and fleet
// events: a console that opens sees the last hour's changes, and a dead
// instance's last snapshot ages out on its own.
const FleetRetention = time.Hour

// FleetTopics are the fleet's topics, created on demand by the first worker
// or console that needs them. The fleet topic is compacted (the latest
// snapshot per instance) and deleted by time (events and dead instances
// age out); 3 partitions spread a large fleet's snapshots over brokers. The
// control topic is compacted only: a group's desired state lasts until it
// is replaced, and one partition is plenty for a record per group.
func FleetTopics(fleet, control string) []TopicSpec {
	return []TopicSpec{
		{Name: fleet, Partitions: 3, Configs: map[string]string{
			"cleanup.policy": "compact,delete",
			"retention.ms":   strconv.FormatInt(FleetRetention.Milliseconds(), 10),
			// Short segments so compaction and retention can act on a
			// topic that only ever has a few MB.
			"segment.ms":    strconv.FormatInt((10 * time.Minute).Milliseconds(), 10),
			"segment.bytes": strconv.Itoa(16 << 20),
		}},
		{Name: control, Partitions: 1, Configs: map[string]string{
			"cleanup.policy": "compact",
		}},
	}
}
