package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// EnsureTopics creates each topic that does not exist yet, with its configs,
// on any Kafka cluster (the embedded one or a real one). Existing topics are
// left exactly as they are: inferops never changes an operator's topic
// behind their back. It returns the names it created.
func EnsureTopics(ctx context.Context, cfg Config, specs []pipeline.TopicSpec) (created []string, err error) {
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
