package cluster

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/pipeline"
)

// startTestBroker runs an embedded broker on a random loopback port with its
// data under t.TempDir(); mod adjusts the config first.
func startTestBroker(t testing.TB, mod func(*BrokerConfig)) *Broker {
	t.Helper()
	cfg := BrokerConfig{Addr: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "kafka")}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := StartBroker(ctx, cfg)
	if err != nil {
		t.Fatalf("StartBroker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newTestClient(t testing.TB, cfg Config) sarama.Client {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		t.Fatalf("connect: %v", cfg.Explain(err))
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func partitionCounts(t testing.TB, c sarama.Client, topics ...string) map[string]int {
	t.Helper()
	if err := c.RefreshMetadata(topics...); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	got := map[string]int{}
	for _, tp := range topics {
		ps, err := c.Partitions(tp)
		if err != nil {
			t.Fatalf("partitions of %s: %v", tp, err)
		}
		got[tp] = len(ps)
	}
	return got
}

var wantPipeline = map[string]int{pipeline.DefaultInput: 12, pipeline.DefaultOutput: 12, pipeline.DefaultDLQ: 3}

func TestEmbeddedBrokerTopicsAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka")
	cfg := BrokerConfig{Addr: "127.0.0.1:0", DataDir: dir}
	b, err := StartBroker(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, b.ClientConfig())
	got := partitionCounts(t, c, pipeline.DefaultInput, pipeline.DefaultOutput, pipeline.DefaultDLQ)
	for tp, n := range wantPipeline {
		if got[tp] != n {
			t.Errorf("%s has %d partitions, want %d", tp, got[tp], n)
		}
	}
	// Topic-level retention, or kfake never trims (kfake.md).
	ti := b.Cluster().TopicInfo(pipeline.DefaultInput)
	for _, k := range []string{"retention.bytes", "retention.ms", "segment.bytes"} {
		if v := ti.Configs[k]; v == nil || *v == "" {
			t.Errorf("ai_input has no topic-level %s", k)
		}
	}
	// Produce something, restart from the same data dir, find it again.
	sc, _ := b.ClientConfig().Sarama()
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(b.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: 0, Value: sarama.StringEncoder("x")}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	c.Close()
	b.Close()

	b2, err := StartBroker(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart from %s: %v", dir, err)
	}
	defer b2.Close()
	var total int64
	for _, pi := range b2.Cluster().PartitionInfos(pipeline.DefaultInput) {
		total += pi.HighWatermark
	}
	if total != 5 {
		t.Errorf("after restart ai_input holds %d records, want 5", total)
	}
	c2 := newTestClient(t, b2.ClientConfig())
	got = partitionCounts(t, c2, pipeline.DefaultInput, pipeline.DefaultOutput, pipeline.DefaultDLQ)
	for tp, n := range wantPipeline {
		if got[tp] != n {
			t.Errorf("after restart %s has %d partitions, want %d", tp, got[tp], n)
		}
	}
}

func TestEmbeddedBrokerErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  BrokerConfig
		want []string
	}{
		{"taken port", BrokerConfig{Addr: taken.Addr().String(), Ephemeral: true}, []string{"--kafka-addr", taken.Addr().String(), "already in use"}},
		{"no port", BrokerConfig{Addr: "127.0.0.1", Ephemeral: true}, []string{"--kafka-addr", "host:port"}},
		{"bad port", BrokerConfig{Addr: "127.0.0.1:http9", Ephemeral: true}, []string{"--kafka-addr", "bad port"}},
		{"wildcard", BrokerConfig{Addr: "0.0.0.0:0", Ephemeral: true}, []string{"--kafka-addr", "advertises"}},
		{"wildcard advertised", BrokerConfig{Addr: "127.0.0.1:0", AdvertisedAddr: "0.0.0.0:9092", Ephemeral: true}, []string{"--kafka-advertised-addr", "wildcard"}},
		{"advertised without port", BrokerConfig{Addr: "127.0.0.1:0", AdvertisedAddr: "kafka-1", Ephemeral: true}, []string{"--kafka-advertised-addr", "host:port"}},
		{"foreign ip", BrokerConfig{Addr: "192.0.2.1:0", Ephemeral: true}, []string{"--kafka-addr", "not an address of this machine"}},
		{"data dir under a file", BrokerConfig{Addr: "127.0.0.1:0", DataDir: filepath.Join(file, "kafka")}, []string{"--data-dir", "cannot create"}},
		{"no data dir", BrokerConfig{Addr: "127.0.0.1:0"}, []string{"--data-dir", "--ephemeral"}},
		{"sasl without users", BrokerConfig{Addr: "127.0.0.1:0", Ephemeral: true, SASL: BrokerSASL{Mechanism: "PLAIN"}}, []string{"--kafka-sasl-user"}},
		{"bad mechanism", BrokerConfig{Addr: "127.0.0.1:0", Ephemeral: true, SASL: BrokerSASL{Mechanism: "GSSAPI", Users: map[string]string{"a": "b"}}}, []string{"--kafka-sasl-mechanism"}},
		{"cert without key", BrokerConfig{Addr: "127.0.0.1:0", Ephemeral: true, TLS: BrokerTLS{CertFile: file}}, []string{"--kafka-tls-server-key-file"}},
		{"bad cert", BrokerConfig{Addr: "127.0.0.1:0", Ephemeral: true, TLS: BrokerTLS{CertFile: file, KeyFile: file}}, []string{"--kafka-tls-server-cert-file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := StartBroker(context.Background(), tt.cfg)
			if err == nil {
				b.Close()
				t.Fatalf("StartBroker succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEmbeddedBrokerDataDirLock(t *testing.T) {
	b := startTestBroker(t, nil)
	_, err := StartBroker(context.Background(), BrokerConfig{Addr: "127.0.0.1:0", DataDir: b.cfg.DataDir})
	if err == nil || !strings.Contains(err.Error(), "in use by another embedded broker") || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("second broker on the same data dir: err = %v, want it refused naming --data-dir", err)
	}
	b.Close()
	b2, err := StartBroker(context.Background(), BrokerConfig{Addr: "127.0.0.1:0", DataDir: b.cfg.DataDir})
	if err != nil {
		t.Fatalf("after Close the data dir should be free: %v", err)
	}
	b2.Close()
}

func TestEnsureTopics(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	specs := []pipeline.TopicSpec{
		{Name: "ai_input.perf", Partitions: 12, Configs: pipeline.DefaultRetention.Configs()},
		{Name: "ai_output.perf", Partitions: 6},
		{Name: pipeline.DefaultInput, Partitions: 99}, // exists: must be left alone
	}
	created, err := EnsureTopics(context.Background(), b.ClientConfig(), specs)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(created)
	if strings.Join(created, ",") != "ai_input.perf,ai_output.perf" {
		t.Errorf("created = %v", created)
	}
	c := newTestClient(t, b.ClientConfig())
	got := partitionCounts(t, c, "ai_input.perf", "ai_output.perf", pipeline.DefaultInput)
	if got["ai_input.perf"] != 12 || got["ai_output.perf"] != 6 || got[pipeline.DefaultInput] != 12 {
		t.Errorf("partitions = %v", got)
	}
	if v := b.Cluster().TopicInfo("ai_input.perf").Configs["retention.bytes"]; v == nil || *v != "67108864" {
		t.Errorf("ai_input.perf retention.bytes = %v", v)
	}
	// Idempotent.
	created, err = EnsureTopics(context.Background(), b.ClientConfig(), specs)
	if err != nil || len(created) != 0 {
		t.Errorf("second EnsureTopics = %v, %v; want nothing created", created, err)
	}
	if _, err := EnsureTopics(context.Background(), b.ClientConfig(), []pipeline.TopicSpec{{Name: "x", Partitions: 0}}); err == nil {
		t.Error("EnsureTopics accepted 0 partitions")
	}
}

// TestKcatSeesTopics checks a real librdkafka client accepts the embedded
// broker, not just sarama.
func TestKcatSeesTopics(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is not installed and CI=true: install it (apt-get install kcat)")
		}
		t.Skip("kcat not installed (apt-get install kcat); skipping the librdkafka interop check")
	}
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-L", "-b", b.Addr(), "-m", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	for tp, n := range wantPipeline {
		want := `topic "` + tp + `" with ` + strconv.Itoa(n) + ` partitions`
		if !strings.Contains(string(out), want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, out)
		}
	}
}

// TestEmbeddedRetentionBounded: topic-level retention trims old segments on
// our timer, also after a restart from disk (kfake's own retention ticker
// only starts when a topic is created or altered in-process).
func TestEmbeddedRetentionBounded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka")
	cfg := BrokerConfig{
		Addr: "127.0.0.1:0", DataDir: dir,
		Retention:         pipeline.Retention{Bytes: 8 << 10, Time: 72 * time.Hour, SegmentBytes: 2 << 10},
		RetentionInterval: 50 * time.Millisecond,
	}
	fill := func(b *Broker) {
		t.Helper()
		payload := strings.Repeat("x", 200)
		sc, _ := b.ClientConfig().Sarama()
		sc.Producer.Return.Successes = true
		sc.Producer.Partitioner = sarama.NewManualPartitioner
		p, err := sarama.NewSyncProducer(b.Addrs(), sc)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := 0; i < 200; i++ { // one record per batch: many small segments
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: 0, Value: sarama.StringEncoder(payload)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	trimmed := func(b *Broker, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			pi := b.Cluster().PartitionInfo(pipeline.DefaultInput, 0)
			if pi.LogStartOffset > 0 && pi.NumBytes <= 16<<10 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: partition 0 never trimmed: log start %d, %d bytes kept (retention.bytes 8 KiB)", what, pi.LogStartOffset, pi.NumBytes)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	b, err := StartBroker(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	fill(b)
	trimmed(b, "first run")
	b.Close()

	b, err = StartBroker(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	start := b.Cluster().PartitionInfo(pipeline.DefaultInput, 0).LogStartOffset
	fill(b)
	trimmed(b, "after restart")
	if got := b.Cluster().PartitionInfo(pipeline.DefaultInput, 0).LogStartOffset; got <= start {
		t.Errorf("after restart log start stayed at %d", got)
	}
}

// A broker behind a proxy or a port forward advertises the address clients
// must dial: after bootstrapping from the listener itself, every connection
// a client opens goes to the advertised one.
func TestEmbeddedBrokerAdvertisedAddr(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.AdvertisedAddr = "kafka-1.example.invalid:19092" })
	if b.Addr() != "kafka-1.example.invalid:19092" || b.ListenAddr() == b.Addr() || !strings.HasPrefix(b.ListenAddr(), "127.0.0.1:") {
		t.Fatalf("Addr %q ListenAddr %q", b.Addr(), b.ListenAddr())
	}
	c := newTestClient(t, Config{Brokers: []string{b.ListenAddr()}})
	bs := c.Brokers()
	if len(bs) != 1 || bs[0].Addr() != "kafka-1.example.invalid:19092" {
		var got []string
		for _, x := range bs {
			got = append(got, x.Addr())
		}
		t.Fatalf("metadata advertises %v, want [kafka-1.example.invalid:19092]", got)
	}
	// A wildcard listener is fine once something dialable is advertised.
	w := startTestBroker(t, func(c *BrokerConfig) { c.Addr = "0.0.0.0:0"; c.AdvertisedAddr = "127.0.0.1:19092" })
	if !strings.HasPrefix(w.ListenAddr(), "0.0.0.0:") && !strings.HasPrefix(w.ListenAddr(), "[::]:") {
		t.Fatalf("wildcard broker listens on %q", w.ListenAddr())
	}
}

// TestKcatCommitsReadExactly: librdkafka's consumer group commits, read by
// the collector, give the lag librdkafka itself left: exact where a commit
// exists, and the untouched partitions' backlog counted as no-commit.
func TestKcatCommitsReadExactly(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is not installed and CI=true: install it (apt-get install kcat)")
		}
		t.Skip("kcat not installed (apt-get install kcat); skipping the librdkafka interop check")
	}
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	// 50 records on partitions 0-5, none on 6-11; kcat reads 120 of the
	// 300 and commits what it read.
	counts := map[int32]int{}
	for p := int32(0); p < 6; p++ {
		counts[p] = 50
	}
	produce(t, cfg, pipeline.DefaultInput, counts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", b.Addr(), "-G", "kcat-group", "-c", "120", "-o", "beginning",
		"-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", "-q", pipeline.DefaultInput)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -G: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(string(out), "\n"); n != 120 {
		t.Fatalf("kcat read %d records, want 120:\n%s", n, out)
	}
	c := newTestCollector(t, cfg, pipeline.DefaultInput, "kcat-group")
	s := waitSnapshot(t, c, "kcat's commits of the 120 records it read", func(s *Snapshot) bool {
		var committed int64
		for _, p := range s.Partitions {
			if p.Committed > 0 {
				committed += p.Committed
			}
		}
		return committed == 120
	})
	var committedLag int64
	for _, p := range s.Partitions {
		switch {
		case p.Committed >= 0:
			if p.LagBasis != LagCommitted || p.Lag != p.HighWatermark-p.Committed {
				t.Errorf("p%d: lag %d basis %s, want hwm %d - kcat's commit %d", p.Partition, p.Lag, p.LagBasis, p.HighWatermark, p.Committed)
			}
			committedLag += p.Lag
		case p.HighWatermark > 0:
			if p.LagBasis != LagNoCommit || p.Lag != p.HighWatermark {
				t.Errorf("p%d untouched by kcat: lag %d basis %s, want its %d records, no_commit", p.Partition, p.Lag, p.LagBasis, p.HighWatermark)
			}
		}
	}
	if s.TotalLag != 300-120 || s.CommittedLag != committedLag {
		t.Errorf("total lag %d committed %d, want 180 in all and %d where kcat committed", s.TotalLag, s.CommittedLag, committedLag)
	}
}
