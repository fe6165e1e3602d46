package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

// BenchmarkCollectorRefresh measures one steady-state lag refresh (log-end
// offsets, committed offsets, group description) on the embedded broker.
// Goal: under 1 s for 10,000 partitions, with requests per refresh growing
// with the number of brokers, not partitions.
func BenchmarkCollectorRefresh(b *testing.B) {
	for _, bc := range []struct{ partitions, brokers int }{
		{12, 1},
		{10000, 1},
		{10000, 3},
	} {
		b.Run(fmt.Sprintf("partitions=%d/brokers=%d", bc.partitions, bc.brokers), func(b *testing.B) {
			br := startTestBroker(b, func(c *BrokerConfig) {
				c.Ephemeral = true
				c.Nodes = bc.brokers
				c.Topics = []pipeline.TopicSpec{{Name: "bench", Partitions: int32(bc.partitions)}}
			})
			cfg := br.ClientConfig()
			commitAll(b, cfg, "bench-group", "bench", bc.partitions)
			c := newTestCollector(b, cfg, "bench", "bench-group")
			ctx := context.Background()
			if _, err := c.Refresh(ctx); err != nil { // warm up: coordinator, log start
				b.Fatal(err)
			}
			reqs := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := c.Refresh(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(s.Partitions) != bc.partitions {
					b.Fatalf("%d partitions", len(s.Partitions))
				}
				reqs += s.Requests
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/refresh")
		})
	}
}

// commitAll commits offset 0 on every other partition, so OffsetFetch
// carries real entries.
func commitAll(b *testing.B, cfg Config, group, topic string, partitions int) {
	b.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		b.Fatal(err)
	}
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	coord, err := client.Coordinator(group)
	if err != nil {
		b.Fatal(err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1, RetentionTime: -1}
	for p := 0; p < partitions; p += 2 {
		req.AddBlock(topic, int32(p), 0, 0, "")
	}
	if _, err := coord.CommitOffset(req); err != nil {
		b.Fatal(err)
	}
}
