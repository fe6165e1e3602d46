package doctor

import (
	"strings"
	"testing"
)

// seedTopic is a 3-broker cluster configured exactly as the seed says.
func seedTopic() KafkaFacts {
	f := KafkaFacts{
		Bootstrap: []string{"k1:9092", "k2:9092"}, BrokerCount: 3,
		Topic: "ai_input", TopicExists: true, Partitions: 12, ReplicationFactor: 3,
		TopicConfigs: map[string]string{"min.insync.replicas": "2", "max.message.bytes": "2000000",
			"retention.ms": "259200000", "compression.type": "zstd"},
		BrokerConfigs: map[string]string{"replica.fetch.max.bytes": "3000000"},
		Group:         "tf_serving_group", GroupMembers: 4, Workers: 4,
		SampledRecords: 200, LargestRecord: 2048, GroupStatus: "OK",
	}
	f.SetOutputTopics([]string{"ai_output", "ai_input.dlq"}, []int{12, 3})
	return f
}

func TestJudgeKafka(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*KafkaFacts)
		id     string
		want   Status
		seen   string // substring of Seen
		fix    string // substring of Fix
	}{
		{"seed cluster passes", func(*KafkaFacts) {}, "", Pass, "", ""},
		{"one broker", func(f *KafkaFacts) {
			f.BrokerCount = 1
			f.ReplicationFactor = 1
			f.TopicConfigs["min.insync.replicas"] = "1"
		}, "kafka.brokers", Warn, "1", "add brokers"},
		{"one broker, embedded", func(f *KafkaFacts) { f.BrokerCount = 1; f.Embedded = true }, "kafka.brokers", Info, "embedded", ""},
		{"one broker: RF 1 is all it can do", func(f *KafkaFacts) { f.BrokerCount = 1; f.ReplicationFactor = 1 }, "kafka.replication", Pass, "1", ""},
		{"topic missing", func(f *KafkaFacts) { f.TopicExists = false }, "kafka.topic", Fail, "missing",
			"kafka-topics.sh --bootstrap-server k1:9092,k2:9092 --create --topic ai_input --partitions 12 --replication-factor 3"},
		{"topic missing skips the rest", func(f *KafkaFacts) { f.TopicExists = false }, "kafka.retention", Skip, "ai_input missing", ""},
		{"too few partitions", func(f *KafkaFacts) { f.Partitions = 3; f.GroupMembers = 3; f.Workers = 3 }, "kafka.partitions", Warn, "3 partitions",
			"--alter --topic ai_input --partitions 12"},
		{"more workers than partitions", func(f *KafkaFacts) { f.Workers = 16 }, "kafka.partitions", Warn, "4 would sit idle", "--partitions 16"},
		{"no consumers", func(f *KafkaFacts) { f.GroupMembers = 0 }, "kafka.partitions", Warn, "no worker is consuming", "inferops worker"},
		{"RF 1 on 3 brokers", func(f *KafkaFacts) { f.ReplicationFactor = 1; f.TopicConfigs["min.insync.replicas"] = "1" }, "kafka.replication", Fail, "1", "kafka-reassign-partitions.sh"},
		{"RF 2 on 3 brokers", func(f *KafkaFacts) { f.ReplicationFactor = 2; f.TopicConfigs["min.insync.replicas"] = "1" }, "kafka.replication", Warn, "2", "rf3.json"},
		{"min ISR 1 with RF 3", func(f *KafkaFacts) { f.TopicConfigs["min.insync.replicas"] = "1" }, "kafka.min_isr", Warn, "1",
			"kafka-configs.sh --bootstrap-server k1:9092,k2:9092 --alter --entity-type topics --entity-name ai_input --add-config min.insync.replicas=2"},
		{"min ISR above RF", func(f *KafkaFacts) {
			f.ReplicationFactor = 1
			f.BrokerCount = 1
			f.TopicConfigs["min.insync.replicas"] = "2"
		}, "kafka.min_isr", Fail, "NOT_ENOUGH_REPLICAS", "min.insync.replicas=1"},
		{"min ISR unreadable", func(f *KafkaFacts) { delete(f.TopicConfigs, "min.insync.replicas") }, "kafka.min_isr", Info, "unknown", ""},
		{"max message at Kafka default", func(f *KafkaFacts) { f.TopicConfigs["max.message.bytes"] = "1048588" }, "kafka.max_message", Warn, "1048588", "max.message.bytes=2000000"},
		{"records at the limit", func(f *KafkaFacts) { f.LargestRecord = 1900000; f.BrokerConfigs["replica.fetch.max.bytes"] = "1048576" }, "kafka.max_message", Fail, "largest of 200 recent records 1900000 bytes",
			"max.message.bytes=3800000; and replica.fetch.max.bytes=3800000"},
		{"retention 24h", func(f *KafkaFacts) { f.TopicConfigs["retention.ms"] = "86400000" }, "kafka.retention", Warn, "24h", "retention.ms=259200000"},
		{"retention 7 days", func(f *KafkaFacts) { f.TopicConfigs["retention.ms"] = "604800000" }, "kafka.retention", Pass, "168h", ""},
		{"retention unlimited", func(f *KafkaFacts) { f.TopicConfigs["retention.ms"] = "-1" }, "kafka.retention", Pass, "unlimited", ""},
		{"retention with byte cap", func(f *KafkaFacts) { f.TopicConfigs["retention.bytes"] = "67108864" }, "kafka.retention", Pass, "64 MiB per partition", ""},
		{"compression producer", func(f *KafkaFacts) { f.TopicConfigs["compression.type"] = "producer" }, "kafka.compression", Info, "producer", "--print kafka-producer"},
		{"compression gzip", func(f *KafkaFacts) { f.TopicConfigs["compression.type"] = "gzip" }, "kafka.compression", Warn, "gzip", "compression.type=zstd"},
		{"group never committed", func(f *KafkaFacts) { f.GroupStatus = "" }, "kafka.group", Info, "no committed offsets", ""},
		{"group WARN", func(f *KafkaFacts) { f.GroupStatus = "WARN"; f.GroupLag = 5000 }, "kafka.group", Warn, "WARN, lag 5000", "press +"},
		{"group STALL", func(f *KafkaFacts) { f.GroupStatus = "STALL"; f.GroupDetail = "partition 3" }, "kafka.group", Fail, "STALL, lag 0 (partition 3)", "stuck"},
		{"group STOP", func(f *KafkaFacts) { f.GroupStatus = "STOP" }, "kafka.group", Fail, "STOP", "stopped committing"},
		{"group REWIND", func(f *KafkaFacts) { f.GroupStatus = "REWIND" }, "kafka.group", Warn, "REWIND", "--describe --group tf_serving_group"},
		{"group not found, nothing waiting", func(f *KafkaFacts) { f.GroupStatus = "NOTFOUND"; f.GroupDetail = `group "x" does not exist` }, "kafka.group", Warn, `NOTFOUND, lag 0 (group "x" does not exist)`, "--list"},
		{"group not found, records waiting", func(f *KafkaFacts) { f.GroupStatus = "NOTFOUND"; f.GroupLag = 24 }, "kafka.group", Fail, `NOTFOUND, lag 24`, "--list"},
		{"output topics present", func(*KafkaFacts) {}, "kafka.output_topics", Pass, "ai_output (12 partitions), ai_input.dlq (3 partitions)", ""},
		{"DLQ missing", func(f *KafkaFacts) { f.SetOutputTopics([]string{"ai_output", "ai_input.dlq"}, []int{12, 0}) }, "kafka.output_topics", Fail,
			"missing: ai_input.dlq; present: ai_output", "kafka-topics.sh --bootstrap-server k1:9092,k2:9092 --create --topic ai_input.dlq --partitions 3 --replication-factor 3"},
		{"both missing", func(f *KafkaFacts) { f.SetOutputTopics([]string{"out", "out"}, []int{0, 0}) }, "kafka.output_topics", Fail, "missing: out", "--topic out --partitions 12"},
		{"group unreadable", func(f *KafkaFacts) { f.GroupErr = "GROUP_AUTHORIZATION_FAILED" }, "kafka.group", Warn, "unknown: GROUP_AUTH", "--group tf_serving_group"},
		{"group ERR", func(f *KafkaFacts) { f.GroupStatus = "ERR" }, "kafka.group", Fail, "ERR", "kafka-consumer-groups.sh"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := seedTopic()
			tc.mutate(&f)
			cs := JudgeKafka(f)
			if tc.id == "" {
				for _, c := range cs {
					if c.Status != Pass {
						t.Errorf("%s: %s %q", c.ID, c.Status, c.Seen)
					}
				}
				return
			}
			c := find(t, cs, tc.id)
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("%s: got %s seen %q fix %q\nwant %s seen ~%q fix ~%q", tc.id, c.Status, c.Seen, c.Fix, tc.want, tc.seen, tc.fix)
			}
			if c.Section != SectionKafka || c.Name == "" {
				t.Errorf("incomplete: %+v", c)
			}
			if (c.Status == Warn || c.Status == Fail) && (c.Why == "" || c.Fix == "") {
				t.Errorf("%s without why/fix: %+v", c.Status, c)
			}
		})
	}
}
