package doctor

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

func startBroker(t *testing.T, topics []pipeline.TopicSpec) *cluster.Broker {
	t.Helper()
	return stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{Topics: topics}}).Broker
}

// produceAndCommit writes n records of size bytes to each partition and,
// when group is set, commits offset `commitAt` for it (a simple commit,
// outside any generation: a group with offsets and no live member).
func produceAndCommit(t *testing.T, cfg cluster.Config, topic string, partitions, n, size int, group string, commitAt int64) {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for part := 0; part < partitions; part++ {
		for i := 0; i < n; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(part), Value: sarama.StringEncoder(strings.Repeat("v", size))})
		}
	}
	clustertest.Produce(t, cfg.Brokers, sc, msgs)
	if group == "" {
		return
	}
	offsets := map[int32]int64{}
	for part := 0; part < partitions; part++ {
		offsets[int32(part)] = commitAt
	}
	clustertest.Commit(t, cfg.Brokers, sc, group, topic, offsets)
}

func TestCheckKafkaEmbedded(t *testing.T) {
	day := fmt.Sprint((24 * time.Hour).Milliseconds())
	b := startBroker(t, []pipeline.TopicSpec{
		{Name: "thin", Partitions: 3, Configs: map[string]string{"retention.ms": day, "max.message.bytes": "1048588"}},
		{Name: "seeded", Partitions: 12, Configs: map[string]string{"retention.ms": "259200000", "compression.type": "zstd", "max.message.bytes": "2000000"}},
	})
	cfg := b.ClientConfig()
	produceAndCommit(t, cfg, "thin", 3, 6, 960000, "lagging", 2)
	produceAndCommit(t, cfg, "seeded", 12, 2, 100, "", 0)

	tests := []struct {
		name  string
		input string
		group string
		want  map[string]Status // check id -> status
		seen  map[string]string // check id -> substring of Seen
		fix   map[string]string // check id -> substring of Fix
	}{
		{
			name: "thin topic: too few partitions, short retention, records near the limit, stopped group", input: "thin", group: "lagging",
			want: map[string]Status{"kafka.reachable": Pass, "kafka.brokers": Warn, "kafka.topic": Pass, "kafka.partitions": Warn,
				"kafka.replication": Pass, "kafka.retention": Warn, "kafka.max_message": Fail, "kafka.group": Fail, "kafka.output_topics": Fail},
			seen: map[string]string{"kafka.partitions": "3 partitions, 0 members in lagging, --workers 4",
				"kafka.retention": "24h", "kafka.max_message": "largest of", "kafka.group": "STOP", "kafka.brokers": "1"},
			fix: map[string]string{
				"kafka.partitions":    "kafka-topics.sh --bootstrap-server " + b.Addr() + " --alter --topic thin --partitions 12",
				"kafka.retention":     "kafka-configs.sh --bootstrap-server " + b.Addr() + " --alter --entity-type topics --entity-name thin --add-config retention.ms=259200000",
				"kafka.max_message":   "max.message.bytes=",
				"kafka.output_topics": "--create --topic ai_output --partitions 12 --replication-factor 1",
			},
		},
		{
			// A group that does not exist, with 24 records waiting: not OK,
			// not merely "nothing to judge".
			name: "seed-shaped topic, group does not exist", input: "seeded", group: "nobody",
			want: map[string]Status{"kafka.topic": Pass, "kafka.retention": Pass, "kafka.compression": Pass, "kafka.max_message": Pass, "kafka.group": Fail},
			seen: map[string]string{"kafka.topic": "12 partitions", "kafka.max_message": "largest of 24 recent records 100 bytes",
				"kafka.group": `NOTFOUND, lag 24 (group "nobody" does not exist`},
			fix: map[string]string{"kafka.group": "--list"},
		},
		{
			name: "missing topic", input: "ai_inptu", group: "g",
			want: map[string]Status{"kafka.topic": Fail, "kafka.partitions": Skip},
			fix:  map[string]string{"kafka.topic": "kafka-topics.sh --bootstrap-server " + b.Addr() + " --create --topic ai_inptu --partitions 12 --replication-factor 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Kafka: cluster.Config{Brokers: []string{b.Addr()}}, Input: tc.input, Group: tc.group, SectionTimeout: 8 * time.Second}
			o.SetDefaults()
			ctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
			defer cancel()
			cs := CheckKafka(ctx, o)
			wantChecks(t, cs, tc.want, tc.seen, tc.fix)
		})
	}
}

func TestCheckKafkaUnreachable(t *testing.T) {
	down := closedPort(t)
	tests := []struct {
		name     string
		embedded bool // as if --brokers were not given (without dialing the real default port)
		fix      string
	}{
		{"explicit brokers", false, "check --brokers"},
		{"embedded default names make run", true, "start it with 'make run' or 'inferops serve'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Kafka: cluster.Config{Brokers: []string{down}}}
			o.SetDefaults()
			o.embeddedKafka = tc.embedded
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			cs := CheckKafka(ctx, o)
			c := find(t, cs, "kafka.reachable")
			if c.Status != Fail || !strings.Contains(c.Fix, tc.fix) || !strings.Contains(c.Seen, down+" (connection refused)") {
				t.Fatalf("got %+v", c)
			}
			if len(cs) != 1 {
				t.Errorf("checks after an unreachable broker: %+v", cs)
			}
		})
	}
}

// A port that accepts TCP but does not speak Kafka (here: an HTTP server's
// idle listener) must fail as a protocol problem, within the budget.
func TestCheckKafkaNotKafka(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close() // hang up like a TLS-only listener on a plaintext hello
		}
	}()
	o := Options{Kafka: cluster.Config{Brokers: []string{l.Addr().String()}}, SectionTimeout: 3 * time.Second}
	o.SetDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
	defer cancel()
	c := find(t, CheckKafka(ctx, o), "kafka.protocol")
	t.Logf("seen: %s", c.Seen)
	if c.Status != Fail || !strings.Contains(c.Fix, "--kafka-tls") {
		t.Fatalf("got %+v", c)
	}
}

// Doctor reads a SASL cluster with the operator's credentials; a wrong
// password is a protocol FAIL that says authentication, within the budget.
func TestCheckKafkaSASL(t *testing.T) {
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{
		SASL: cluster.BrokerSASL{Mechanism: cluster.SASLScramSHA256, Users: map[string]string{"ops": "s3cret"}}}}).Broker
	tests := []struct {
		name, password string
		id             string
		want           Status
		seen           string
	}{
		{"right password", "s3cret", "kafka.topic", Pass, "12 partitions"},
		{"wrong password", "guess", "kafka.protocol", Fail, "authentication failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{SectionTimeout: 8 * time.Second, Kafka: cluster.Config{Brokers: []string{b.Addr()},
				SASL: cluster.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "ops", Password: tc.password}}}
			o.SetDefaults()
			sctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
			defer cancel()
			c := find(t, CheckKafka(sctx, o), tc.id)
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) {
				t.Fatalf("got %s %q, want %s containing %q", c.Status, c.Seen, tc.want, tc.seen)
			}
			if strings.Contains(c.Seen, tc.password) {
				t.Errorf("the password leaked into the report: %q", c.Seen)
			}
		})
	}
}

// A broker that accepts connections and then never answers (here: a
// listener that reads and stays silent) must not hold doctor past its
// budget.
func TestCheckKafkaSilentBrokerKeepsBudget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	o := Options{Kafka: cluster.Config{Brokers: []string{l.Addr().String()}}, SectionTimeout: 1500 * time.Millisecond}
	o.SetDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
	defer cancel()
	c := find(t, CheckKafka(ctx, o), "kafka.protocol")
	// The budget, not sarama's own timeouts and retries, ended the section.
	if c.Status != Fail || !strings.Contains(c.Seen, "within the section's time limit") || !strings.Contains(c.Fix, "raise --timeout (now 1.5s)") {
		t.Fatalf("got %+v", c)
	}
}
