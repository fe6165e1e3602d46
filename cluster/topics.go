package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// Pipeline topic names from the seed.
const (
	TopicInput  = "ai_input"
	TopicOutput = "ai_output"
	TopicDLQ    = "ai_input.dlq"
	GroupInfer  = "tf_serving_group"
)

// TopicSpec is a topic inferops creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16             // 0 = the cluster default
	Configs           map[string]string // topic-level configs, e.g. retention.bytes
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
const MaxMessageBytes = 2_000_000

// dlqMaxMessageBytes leaves room on the DLQ for a maximal input record plus
// the reason and source headers the worker adds (the seed's
// replica.fetch.max.bytes, 3,000,000, still fetches it).
const dlqMaxMessageBytes = 2_500_000

// PipelineTopics are the seed's topics: ai_input (12), ai_output (12) and
// ai_input.dlq (3), each with the given retention and the seed's record size
// limit, so doctor finds the embedded default tuned as it recommends.
func PipelineTopics(r Retention) []TopicSpec {
	with := func(maxBytes int) map[string]string {
		m := r.Configs()
		m["max.message.bytes"] = strconv.Itoa(maxBytes)
		return m
	}
	return []TopicSpec{
		{Name: TopicInput, Partitions: 12, Configs: with(MaxMessageBytes)},
		{Name: TopicOutput, Partitions: 12, Configs: with(MaxMessageBytes)},
		{Name: TopicDLQ, Partitions: 3, Configs: with(dlqMaxMessageBytes)},
	}
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

// EnsureTopics creates each topic that does not exist yet, with its configs,
// on any Kafka cluster (the embedded one or a real one). Existing topics are
// left exactly as they are: inferops never changes an operator's topic
// behind their back. It returns the names it created.
func EnsureTopics(ctx context.Context, cfg Config, specs []TopicSpec) (created []string, err error) {
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
	}
	cfg.SetDefaults()
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, err
	}
	admin, err := newClusterAdmin(ctx, cfg, sc)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, cfg.Explain(fmt.Errorf("list topics: %w", err))
	}
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return created, err
		}
		if _, ok := existing[s.Name]; ok {
			continue
		}
		rf := s.ReplicationFactor
		if rf == 0 {
			rf = -1 // the broker's default.replication.factor (KIP-464)
		}
		entries := map[string]*string{}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := s.Configs[k]
			entries[k] = &v
		}
		err := admin.CreateTopic(s.Name, &sarama.TopicDetail{NumPartitions: s.Partitions, ReplicationFactor: rf, ConfigEntries: entries}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return created, cfg.Explain(fmt.Errorf("create topic %s (%d partitions): %w", s.Name, s.Partitions, err))
		}
		if err == nil {
			created = append(created, s.Name)
		}
	}
	return created, nil
}

// newClusterAdmin connects an admin client, giving up when ctx ends (sarama
// itself takes no context, so the dial runs aside and is abandoned).
func newClusterAdmin(ctx context.Context, cfg Config, sc *sarama.Config) (sarama.ClusterAdmin, error) {
	type result struct {
		a   sarama.ClusterAdmin
		err error
	}
	ch := make(chan result, 1)
	go func() {
		a, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
		ch <- result{a, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, cfg.Explain(r.err)
		}
		return r.a, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.a != nil {
				r.a.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
