package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

func TestAdmin(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true; c.Nodes = 3 })
	cfg := b.ClientConfig()
	commit(t, cfg, "g-one", pipeline.DefaultInput, map[int32]int64{0: 0})
	commit(t, cfg, "g-two", pipeline.DefaultInput, map[int32]int64{0: 0})

	a, err := NewAdmin(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	bs, err := a.Brokers()
	if err != nil || len(bs) != 3 {
		t.Fatalf("Brokers = %v, %v; want 3", bs, err)
	}
	for _, want := range b.Addrs() {
		if !slices.ContainsFunc(bs, func(bi BrokerInfo) bool { return bi.Addr == want }) {
			t.Errorf("broker %s missing from %v", want, bs)
		}
	}
	for tp, n := range wantPipeline {
		if got, err := a.TopicPartitions(tp); err != nil || got != n {
			t.Errorf("TopicPartitions(%s) = %d, %v; want %d", tp, got, err, n)
		}
	}
	if _, err := a.TopicPartitions("nope"); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("TopicPartitions(nope) err = %v", err)
	}
	cfgs, err := a.TopicConfigs(pipeline.DefaultInput)
	if err != nil {
		t.Fatal(err)
	}
	if cfgs["retention.bytes"] != "67108864" || cfgs["retention.ms"] != "259200000" {
		t.Errorf("ai_input retention = %q bytes, %q ms", cfgs["retention.bytes"], cfgs["retention.ms"])
	}
	gs, err := a.Groups()
	if err != nil || !slices.Contains(gs, "g-one") || !slices.Contains(gs, "g-two") {
		t.Errorf("Groups = %v, %v", gs, err)
	}
}
