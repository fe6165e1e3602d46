package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

func TestAdminInspect(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) {
		c.Nodes = 3
		c.Topics = []pipeline.TopicSpec{{Name: "in", Partitions: 4}, {Name: "empty", Partitions: 2}}
	})
	cfg := b.ClientConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	minRF, maxRF, err := a.TopicReplication("in")
	if err != nil || minRF < 1 || maxRF < minRF {
		t.Fatalf("TopicReplication = %d, %d, %v", minRF, maxRF, err)
	}
	if _, _, err := a.TopicReplication("nope"); err == nil {
		t.Fatalf("TopicReplication of a missing topic: no error")
	}
	brokers, err := a.Brokers()
	if err != nil || len(brokers) != 3 {
		t.Fatalf("Brokers = %v, %v", brokers, err)
	}
	bc, err := a.BrokerConfigs(brokers[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if bc["message.max.bytes"] != "2000000" {
		t.Errorf("broker message.max.bytes = %q, want the embedded 2000000", bc["message.max.bytes"])
	}
	_, err = a.TopicPartitions("nope")
	if !IsUnknownTopic(err) {
		t.Errorf("IsUnknownTopic(%v) = false", err)
	}
	if IsUnknownTopic(context.DeadlineExceeded) {
		t.Errorf("IsUnknownTopic(deadline) = true")
	}

	// 30 small records on every partition and one large one on partition 2.
	sc, _ := cfg.Sarama()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.MaxMessageBytes = 2000000
	p, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for part := int32(0); part < 4; part++ {
		for i := 0; i < 30; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: "in", Partition: part, Value: sarama.StringEncoder("small")})
		}
	}
	big := strings.Repeat("x", 300000)
	msgs = append(msgs, &sarama.ProducerMessage{Topic: "in", Partition: 2, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(big),
		Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("vv")}}})
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	p.Close()

	tests := []struct {
		name        string
		topic       string
		limit       int
		wantN       int
		wantLargest int
	}{
		{"bounded sample sees the newest, large record", "in", 20, 20, 300000 + 1 + 1 + 2},
		{"limit above the topic size reads all", "in", 1000, 121, 300004},
		{"empty topic", "empty", 50, 0, 0},
		{"zero limit", "in", 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, largest, err := a.RecentRecords(ctx, tc.topic, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.wantN || largest != tc.wantLargest {
				t.Fatalf("RecentRecords(%s, %d) = %d records, largest %d; want %d, %d", tc.topic, tc.limit, n, largest, tc.wantN, tc.wantLargest)
			}
		})
	}
}
