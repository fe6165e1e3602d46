package doctor

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KafkaFacts is what doctor learned from the cluster. Gathering (network)
// and judging (this file, pure) are separate so every verdict is
// table-tested and the gathering can change with the cluster package.
type KafkaFacts struct {
	Bootstrap   []string // what the operator passed (for the commands we print)
	BrokerCount int
	Embedded    bool // the embedded single-node broker: one broker is by design

	Topic             string
	TopicExists       bool
	Partitions        int
	ReplicationFactor int               // smallest replica count over the partitions
	TopicConfigs      map[string]string // effective topic configs (DescribeConfigs, defaults included)
	BrokerConfigs     map[string]string // one broker's configs, when readable

	// OutputTopics are the topics workers produce to (results, DLQ):
	// name -> partitions, 0 = missing.
	OutputTopics map[string]int
	outputOrder  []string

	Group        string
	GroupMembers int
	Workers      int // configured --workers

	SampledRecords int // records read from the end of the topic
	LargestRecord  int // bytes (key + value + headers) of the largest sampled record

	// GroupStatus is the Burrow-style status (OK, WARN, STALL, STOP, REWIND,
	// ERR); empty when the group has no committed offsets.
	GroupStatus string
	GroupLag    int64
	GroupDetail string // e.g. the worst partition
	GroupErr    string // the group could not be read
}

func (f KafkaFacts) bootstrap() string {
	if len(f.Bootstrap) == 0 {
		return "<broker:9092>"
	}
	return strings.Join(f.Bootstrap, ",")
}

// configsCmd is the exact kafka-configs.sh command that sets topic configs.
func (f KafkaFacts) configsCmd(kv string) string {
	return fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config %s",
		f.bootstrap(), f.Topic, kv)
}

func (f KafkaFacts) wantRF() int {
	if f.BrokerCount >= SeedReplication {
		return SeedReplication
	}
	return max(f.BrokerCount, 1)
}

// JudgeKafka turns facts into checks. It assumes the brokers answered (the
// reachability check comes first).
func JudgeKafka(f KafkaFacts) []Check {
	out := []Check{judgeBrokers(f), judgeTopic(f)}
	if len(f.OutputTopics) > 0 {
		out = append(out, judgeOutputTopics(f))
	}
	if !f.TopicExists {
		return append(out, skipped(SectionKafka, "topic "+f.Topic+" missing",
			[2]string{"kafka.partitions", "partitions vs workers"},
			[2]string{"kafka.replication", "replication factor"},
			[2]string{"kafka.min_isr", "min.insync.replicas"},
			[2]string{"kafka.max_message", "max message size"},
			[2]string{"kafka.retention", "retention"},
			[2]string{"kafka.compression", "compression"},
		)...)
	}
	out = append(out,
		judgeParallelism(f),
		judgeReplication(f),
		judgeMinISR(f),
		judgeMaxMessage(f),
		judgeRetention(f),
		judgeCompression(f),
		judgeGroup(f),
	)
	return out
}

func judgeBrokers(f KafkaFacts) Check {
	c := kafkaCheck("kafka.brokers", "broker count")
	c.Want = ">= 3"
	c.Why = "three brokers let every partition keep 3 replicas and survive losing one broker without losing acknowledged records"
	c.Seen = strconv.Itoa(f.BrokerCount)
	switch {
	case f.BrokerCount >= 3:
		c.Status = Pass
	case f.Embedded:
		c.Status = Info
		c.Seen += " (the embedded single-node broker)"
	default:
		c.Status = Warn
		c.Fix = "add brokers (the seed runs 3: broker1-3:9092), then raise replication with kafka-reassign-partitions.sh"
	}
	return c
}

func judgeTopic(f KafkaFacts) Check {
	c := kafkaCheck("kafka.topic", "input topic "+f.Topic)
	c.Want = "exists"
	c.Why = "producers write and workers consume here; without it producers fail with UNKNOWN_TOPIC_OR_PARTITION"
	if f.TopicExists {
		c.Status, c.Seen = Pass, fmt.Sprintf("exists, %d partitions", f.Partitions)
		return c
	}
	c.Status, c.Seen = Fail, "missing"
	c.Fix = fmt.Sprintf("kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions %d --replication-factor %d "+
		"--config min.insync.replicas=%d --config retention.ms=%d --config max.message.bytes=%d --config compression.type=%s "+
		"(or check --input)",
		f.bootstrap(), f.Topic, SeedPartitions, f.wantRF(), min(SeedMinISR, f.wantRF()),
		(SeedRetentionHours * time.Hour).Milliseconds(), SeedMessageMaxBytes, SeedCompression)
	return c
}

// SetOutputTopics records the produce-side topics in the order given.
func (f *KafkaFacts) SetOutputTopics(names []string, partitions []int) {
	f.OutputTopics = map[string]int{}
	f.outputOrder = nil
	for i, n := range names {
		if _, dup := f.OutputTopics[n]; dup {
			continue
		}
		f.OutputTopics[n] = partitions[i]
		f.outputOrder = append(f.outputOrder, n)
	}
}

func judgeOutputTopics(f KafkaFacts) Check {
	c := kafkaCheck("kafka.output_topics", "output and DLQ topics")
	c.Want = "exist"
	c.Why = "workers produce results and rejected records there; with auto-creation off (the seed) every produce fails and the input is never committed"
	var seen, missing, cmds []string
	for _, n := range f.outputOrder {
		p := f.OutputTopics[n]
		if p > 0 {
			seen = append(seen, fmt.Sprintf("%s (%d partitions)", n, p))
			continue
		}
		missing = append(missing, n)
		parts := SeedPartitions
		if strings.HasSuffix(n, ".dlq") {
			parts = 3 // bad input is rare; a few partitions keep its order readable
		}
		cmds = append(cmds, fmt.Sprintf("kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions %d --replication-factor %d",
			f.bootstrap(), n, parts, f.wantRF()))
	}
	if len(missing) == 0 {
		c.Status, c.Seen = Pass, strings.Join(seen, ", ")
		return c
	}
	c.Status = Fail
	c.Seen = "missing: " + strings.Join(missing, ", ")
	if len(seen) > 0 {
		c.Seen += "; present: " + strings.Join(seen, ", ")
	}
	c.Fix = strings.Join(cmds, "\n") + "\n(or check --output / --dlq)"
	return c
}

func judgeParallelism(f KafkaFacts) Check {
	c := kafkaCheck("kafka.partitions", "partitions vs workers")
	c.Want = fmt.Sprintf(">= %d partitions, workers <= partitions", SeedPartitions)
	c.Why = "a partition is consumed by one group member at a time: partitions cap how many workers do useful work"
	c.Seen = fmt.Sprintf("%d partitions, %d members in %s, --workers %d", f.Partitions, f.GroupMembers, f.Group, f.Workers)
	alter := fmt.Sprintf("kafka-topics.sh --bootstrap-server %s --alter --topic %s --partitions %d",
		f.bootstrap(), f.Topic, max(SeedPartitions, f.Workers, f.GroupMembers))
	busiest := max(f.Workers, f.GroupMembers)
	switch {
	case busiest > f.Partitions:
		c.Status = Warn
		c.Seen += fmt.Sprintf(": %d would sit idle", busiest-f.Partitions)
		c.Fix = alter + " (or lower --workers to " + strconv.Itoa(f.Partitions) + ")"
	case f.Partitions < SeedPartitions:
		c.Status = Warn
		c.Fix = alter + " (adding partitions changes which partition a key maps to)"
	case f.GroupMembers == 0:
		c.Status = Warn
		c.Seen += ": no worker is consuming"
		c.Fix = "start the workers ('inferops worker --workers " + strconv.Itoa(f.Workers) + "', or press + in the console)"
	default:
		c.Status = Pass
	}
	return c
}

func judgeReplication(f KafkaFacts) Check {
	c := kafkaCheck("kafka.replication", "replication factor")
	want := f.wantRF()
	c.Want = strconv.Itoa(want)
	if f.BrokerCount >= SeedReplication {
		c.Want += " (3 brokers or more)"
	} else {
		c.Want += fmt.Sprintf(" (only %d broker(s))", f.BrokerCount)
	}
	c.Why = "with one copy a broker loss loses data and stops the partition; three copies keep serving"
	c.Seen = strconv.Itoa(f.ReplicationFactor)
	switch {
	case f.ReplicationFactor >= want:
		c.Status = Pass
	case f.ReplicationFactor <= 1:
		c.Status = Fail
	default:
		c.Status = Warn
	}
	if c.Status != Pass {
		c.Fix = fmt.Sprintf("kafka-reassign-partitions.sh --bootstrap-server %s --reassignment-json-file rf%d.json --execute "+
			"(list %d brokers per partition of %s in the JSON; default.replication.factor=3 in server.properties for new topics)",
			f.bootstrap(), want, want, f.Topic)
	}
	return c
}

func judgeMinISR(f KafkaFacts) Check {
	c := kafkaCheck("kafka.min_isr", "min.insync.replicas")
	want := min(SeedMinISR, max(f.ReplicationFactor-1, 1))
	c.Want = fmt.Sprintf("%d (replication %d - 1), with producer acks=all", want, f.ReplicationFactor)
	c.Why = "with acks=all, min.insync.replicas is how many copies exist before a write is acknowledged; above the replication factor every write fails"
	v, ok := configInt(f.TopicConfigs, "min.insync.replicas")
	if !ok {
		c.Status, c.Seen = Info, "unknown (config not readable)"
		return c
	}
	c.Seen = strconv.FormatInt(v, 10)
	switch {
	case int(v) > f.ReplicationFactor:
		c.Status = Fail
		c.Seen += fmt.Sprintf(" > replication %d: acks=all producers get NOT_ENOUGH_REPLICAS", f.ReplicationFactor)
	case int(v) >= want:
		c.Status = Pass
	default:
		c.Status = Warn
	}
	if c.Status != Pass {
		c.Fix = f.configsCmd(fmt.Sprintf("min.insync.replicas=%d", want))
	}
	return c
}

func judgeMaxMessage(f KafkaFacts) Check {
	c := kafkaCheck("kafka.max_message", "max message size")
	c.Want = fmt.Sprintf(">= %d bytes and above the largest record", SeedMessageMaxBytes)
	c.Why = "feature vectors and model outputs can exceed Kafka's 1 MB default; a record over the limit fails with MESSAGE_TOO_LARGE at the producer"
	v, ok := configInt(f.TopicConfigs, "max.message.bytes")
	if !ok {
		c.Status, c.Seen = Info, "unknown (config not readable)"
		return c
	}
	c.Seen = fmt.Sprintf("max.message.bytes %d", v)
	if f.SampledRecords > 0 {
		c.Seen += fmt.Sprintf(", largest of %d recent records %d bytes", f.SampledRecords, f.LargestRecord)
	}
	want := int64(SeedMessageMaxBytes)
	if f.LargestRecord > 0 && int64(f.LargestRecord)*2 > want {
		want = int64(f.LargestRecord) * 2
	}
	switch {
	case f.LargestRecord > 0 && int64(f.LargestRecord) > v*9/10:
		c.Status = Fail
		c.Seen += ": records are at the limit"
	case v >= SeedMessageMaxBytes:
		c.Status = Pass
	default:
		c.Status = Warn
	}
	if c.Status != Pass {
		c.Fix = f.configsCmd(fmt.Sprintf("max.message.bytes=%d", want))
		if fetch, ok := configInt(f.BrokerConfigs, "replica.fetch.max.bytes"); ok && fetch < want {
			c.Fix += fmt.Sprintf("; and replica.fetch.max.bytes=%d (now %d) in server.properties so followers can copy it", max(want, SeedReplicaFetchBytes), fetch)
		}
	}
	return c
}

func judgeRetention(f KafkaFacts) Check {
	c := kafkaCheck("kafka.retention", "retention")
	seedMs := (SeedRetentionHours * time.Hour).Milliseconds()
	c.Want = fmt.Sprintf(">= %dh", SeedRetentionHours)
	c.Why = "72 h lets the pipeline replay input after an outage or a bad model version; shorter retention deletes unprocessed records when workers fall behind"
	v, ok := configInt(f.TopicConfigs, "retention.ms")
	if !ok {
		c.Status, c.Seen = Info, "unknown (config not readable)"
		return c
	}
	if v < 0 {
		c.Status, c.Seen = Pass, "unlimited (watch the disk)"
	} else {
		c.Seen = humanMs(v)
		if v >= seedMs {
			c.Status = Pass
		} else {
			c.Status = Warn
			c.Fix = f.configsCmd(fmt.Sprintf("retention.ms=%d", seedMs))
		}
	}
	if b, ok := configInt(f.TopicConfigs, "retention.bytes"); ok && b > 0 {
		c.Seen += fmt.Sprintf(", capped at %s per partition (retention.bytes)", humanBytes(b))
	}
	return c
}

func judgeCompression(f KafkaFacts) Check {
	c := kafkaCheck("kafka.compression", "compression")
	c.Want = SeedCompression
	c.Why = "zstd shrinks JSON feature records several-fold, relieving the network (the seed's bottleneck at high load) and the disks"
	v, ok := f.TopicConfigs["compression.type"]
	if !ok {
		c.Status, c.Seen = Info, "unknown (config not readable)"
		return c
	}
	c.Seen = v
	switch v {
	case SeedCompression:
		c.Status = Pass
	case "producer":
		c.Status = Info
		c.Seen = "producer (each producer's choice is kept)"
		c.Fix = "set compression.type=zstd in producer.properties ('inferops doctor --print kafka-producer'), or force it: " + f.configsCmd("compression.type=zstd")
	default:
		c.Status = Warn
		c.Fix = f.configsCmd("compression.type=zstd")
	}
	return c
}

func judgeGroup(f KafkaFacts) Check {
	c := kafkaCheck("kafka.group", "group "+f.Group+" status")
	c.Want = "OK (Burrow evaluation)"
	c.Why = "STALL means workers are stuck on a batch, STOP that they stopped committing, WARN that lag keeps rising"
	if f.GroupErr != "" {
		c.Status, c.Seen = Warn, "unknown: "+f.GroupErr
		c.Fix = "check that --group " + f.Group + " is the workers' group and that this user may describe it"
		return c
	}
	switch strings.ToUpper(f.GroupStatus) {
	case "":
		c.Status, c.Seen = Info, "no committed offsets yet (no worker has consumed)"
		return c
	case "OK":
		c.Status = Pass
	case "WARN":
		c.Status = Warn
		c.Fix = fmt.Sprintf("lag rising: add workers up to %d (press + or --workers), then partitions (see partitions vs workers)", f.Partitions)
	case "STALL":
		c.Status = Fail
		c.Fix = "workers are stuck: check TF Serving (this report's TF Serving section) and restart the stuck worker"
	case "STOP":
		c.Status = Fail
		c.Fix = "workers stopped committing: start them ('inferops worker' or press + in the console) and read their log"
	case "NOTFOUND":
		// Records waiting on a group nobody runs is an outage; an empty
		// topic and no group yet is a fresh install, or a typo.
		c.Status = Warn
		if f.GroupLag > 0 {
			c.Status = Fail
		}
		c.Fix = "--group " + f.Group + " names no group the cluster knows: check it against the workers' group (kafka-consumer-groups.sh --bootstrap-server " + f.bootstrap() + " --list); the groups seen committing on " + f.Topic + " are named above"
	case "REWIND":
		c.Status = Warn
		c.Fix = "committed offsets went backwards: someone reset the group's offsets; check with kafka-consumer-groups.sh --describe --group " + f.Group
	default:
		c.Status = Fail
		c.Fix = "the group is unhealthy: kafka-consumer-groups.sh --bootstrap-server " + f.bootstrap() + " --describe --group " + f.Group + ", then the worker log"
	}
	c.Seen = fmt.Sprintf("%s, lag %d", strings.ToUpper(f.GroupStatus), f.GroupLag)
	if f.GroupDetail != "" {
		c.Seen += " (" + f.GroupDetail + ")"
	}
	return c
}

func configInt(m map[string]string, key string) (int64, bool) {
	s, ok := m[key]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return v, err == nil
}

func humanMs(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int64(d/time.Hour))
	}
	return d.String()
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d bytes", b)
}
