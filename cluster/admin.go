package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/IBM/sarama"
)

// Admin answers the cluster-level questions the doctor and console ask:
// how many brokers, how many partitions, which topic configs, which groups.
// Lag and group members come from the Collector, not from here.
type Admin struct {
	cfg    Config
	client sarama.Client
	admin  sarama.ClusterAdmin
}

// BrokerInfo is one broker as the cluster metadata describes it.
type BrokerInfo struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"`
	Rack string `json:"rack,omitempty"`
}

// NewAdmin connects; a wrong address or credentials fail here, explained.
func NewAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	cfg.SetDefaults()
	sc, err := cfg.Sarama()
	if err != nil {
		return nil, err
	}
	type result struct {
		c   sarama.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(cfg.Brokers, sc)
		ch <- result{c, err}
	}()
	var client sarama.Client
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, cfg.Explain(r.err)
		}
		client = r.c
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, cfg.Explain(err)
	}
	return &Admin{cfg: cfg, client: client, admin: admin}, nil
}

// Close releases the connections.
func (a *Admin) Close() error { return a.admin.Close() } // closes the client too

// Brokers lists the brokers from fresh metadata, by id.
func (a *Admin) Brokers() ([]BrokerInfo, error) {
	bs, _, err := a.admin.DescribeCluster()
	if err != nil {
		return nil, a.cfg.Explain(fmt.Errorf("describe cluster: %w", err))
	}
	out := make([]BrokerInfo, 0, len(bs))
	for _, b := range bs {
		out = append(out, BrokerInfo{ID: b.ID(), Addr: b.Addr(), Rack: b.Rack()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// TopicPartitions is the partition count of topic; an error that says so
// when the topic does not exist.
func (a *Admin) TopicPartitions(topic string) (int, error) {
	if err := a.client.RefreshMetadata(topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return 0, a.cfg.Explain(fmt.Errorf("metadata for topic %s: %w", topic, err))
	}
	ps, err := a.client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return 0, fmt.Errorf("topic %q does not exist: %w", topic, sarama.ErrUnknownTopicOrPartition)
	}
	if err != nil {
		return 0, a.cfg.Explain(fmt.Errorf("partitions of topic %s: %w", topic, err))
	}
	return len(ps), nil
}

// TopicConfigs returns every config of topic with its effective value
// (defaults included), e.g. retention.ms, max.message.bytes.
func (a *Admin) TopicConfigs(topic string) (map[string]string, error) {
	entries, err := a.admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return nil, a.cfg.Explain(fmt.Errorf("describe configs of topic %s: %w", topic, err))
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.Name] = e.Value
	}
	return out, nil
}

// Groups lists the consumer groups, sorted.
func (a *Admin) Groups() ([]string, error) {
	gs, err := a.admin.ListConsumerGroups()
	if err != nil {
		return nil, a.cfg.Explain(fmt.Errorf("list consumer groups: %w", err))
	}
	out := make([]string, 0, len(gs))
	for g := range gs {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}
