package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produce writes counts[p] records to partition p of topic.
func produce(t testing.TB, cfg Config, topic string, counts map[int32]int) {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(cfg.Explain(err))
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for part, n := range counts {
		for i := 0; i < n; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(fmt.Sprintf("p%d-%d", part, i))})
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// commit stores offsets for group the way a consumer outside any generation
// does (a "simple" commit, generation -1), without joining the group.
func commit(t testing.TB, cfg Config, group, topic string, offsets map[int32]int64) {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	clustertest.Commit(t, cfg.Brokers, sc, group, topic, offsets)
}

func newTestCollector(t testing.TB, cfg Config, topic, group string, opts ...CollectorOption) *Collector {
	t.Helper()
	c, err := NewCollector(cfg, topic, group, opts...)
	if err != nil {
		t.Fatalf("NewCollector: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func refresh(t testing.TB, c *Collector) *Snapshot {
	t.Helper()
	s, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return s
}

func TestCollectorLagExact(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	produced := map[int32]int{}
	committed := map[int32]int64{}
	for p := int32(0); p < 12; p++ {
		produced[p] = 20 + int(p)
		if p != 11 { // partition 11: never committed
			committed[p] = int64(p) // M = p, so lag = 20
		}
	}
	committed[3] = 23 // fully caught up: lag 0
	produce(t, cfg, pipeline.DefaultInput, produced)
	commit(t, cfg, "lag-test", pipeline.DefaultInput, committed)

	c := newTestCollector(t, cfg, pipeline.DefaultInput, "lag-test")
	s := refresh(t, c)
	if len(s.Partitions) != 12 {
		t.Fatalf("%d partitions, want 12", len(s.Partitions))
	}
	var total, committedLag int64
	for _, pl := range s.Partitions {
		n := int64(produced[pl.Partition])
		if pl.HighWatermark != n || pl.LogStart != 0 {
			t.Errorf("p%d: log %d..%d, want 0..%d", pl.Partition, pl.LogStart, pl.HighWatermark, n)
		}
		m, ok := committed[pl.Partition]
		if !ok {
			// Never committed: under auto.offset.reset=earliest the whole
			// log waits, and nobody owns it.
			if pl.Committed != -1 || pl.Lag != n || pl.LagBasis != LagNoCommit || pl.Status != StatusStop {
				t.Errorf("p%d never committed: committed %d lag %d basis %s status %v, want -1, the whole log (%d), no_commit, STOP",
					pl.Partition, pl.Committed, pl.Lag, pl.LagBasis, pl.Status, n)
			}
			total += n
			continue
		}
		if pl.Committed != m || pl.Lag != n-m || pl.LagBasis != LagCommitted {
			t.Errorf("p%d: committed %d lag %d basis %s, want %d and N-M = %d, committed", pl.Partition, pl.Committed, pl.Lag, pl.LagBasis, m, n-m)
		}
		committedLag += n - m
		if pl.Leader != 0 {
			t.Errorf("p%d leader %d, want 0 (single broker)", pl.Partition, pl.Leader)
		}
		total += n - m
	}
	if s.TotalLag != total || s.CommittedLag != committedLag {
		t.Errorf("TotalLag %d committed %d, want %d and %d", s.TotalLag, s.CommittedLag, total, committedLag)
	}
	if s.MaxLag != 31 || s.MaxLagPartition != 11 {
		t.Errorf("MaxLag %d at p%d, want 31 at the uncommitted p11", s.MaxLag, s.MaxLagPartition)
	}
	if s.GroupState != "Empty" || len(s.Members) != 0 {
		t.Errorf("group state %q members %v, want Empty with none", s.GroupState, s.Members)
	}
	if s.Brokers != 1 || s.Topic != pipeline.DefaultInput || s.Group != "lag-test" {
		t.Errorf("snapshot header %+v", s)
	}

	// Rates come from offset deltas between refreshes.
	produce(t, cfg, pipeline.DefaultInput, map[int32]int{0: 30})
	commit(t, cfg, "lag-test", pipeline.DefaultInput, map[int32]int64{0: 10})
	s2 := refresh(t, c)
	dt := s2.Time.Sub(s.Time).Seconds()
	p0 := s2.Partitions[0]
	if got := p0.ProduceRate * dt; got < 29.999 || got > 30.001 {
		t.Errorf("produce rate %v/s over %vs = %v records, want 30", p0.ProduceRate, dt, got)
	}
	if got := p0.ConsumeRate * dt; got < 9.999 || got > 10.001 {
		t.Errorf("consume rate %v/s over %vs = %v records, want 10", p0.ConsumeRate, dt, got)
	}
	if p0.Lag != 50-10 {
		t.Errorf("p0 lag %d, want 40", p0.Lag)
	}
	if s2.Partitions[1].ProduceRate != 0 {
		t.Errorf("p1 produce rate %v, want 0", s2.Partitions[1].ProduceRate)
	}
	// p0's committed offset 10 was at the log end before this refresh's
	// produce, so its lag in time is at least the gap between the refreshes.
	if p0.LagSeconds < 0 {
		t.Errorf("p0 lag seconds %v, want an estimate", p0.LagSeconds)
	}
	// Steady state: one ListOffsets (one broker) + OffsetFetch + DescribeGroups.
	if s2.Requests != 3 {
		t.Errorf("steady-state refresh sent %d requests, want 3", s2.Requests)
	}
	// The first snapshot is untouched by the second refresh (immutable).
	if s.Partitions[0].HighWatermark != 20 {
		t.Errorf("first snapshot changed: p0 hwm %d", s.Partitions[0].HighWatermark)
	}
}

func TestCollectorLogStart(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	produce(t, cfg, pipeline.DefaultDLQ, map[int32]int{0: 10})
	if err := b.Cluster().DeleteRecords(pipeline.DefaultDLQ, 0, 4); err != nil {
		t.Fatal(err)
	}
	commit(t, cfg, "g", pipeline.DefaultDLQ, map[int32]int64{0: 6})
	s := refresh(t, newTestCollector(t, cfg, pipeline.DefaultDLQ, "g"))
	if p := s.Partitions[0]; p.LogStart != 4 || p.HighWatermark != 10 || p.Lag != 4 {
		t.Errorf("p0 = %+v, want log 4..10 lag 4", p)
	}
}

// joinGroup runs a real sarama consumer group member on the input topic
// until the returned stop.
func joinGroup(t *testing.T, cfg Config, group, clientID string) (stop func()) {
	t.Helper()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	return clustertest.Member(t, cfg.Brokers, sc, group, pipeline.DefaultInput, clientID)
}

// waitSnapshot refreshes until ok accepts a snapshot (rebalances take a
// heartbeat or two) and fails with the last one after the deadline.
func waitSnapshot(t *testing.T, c *Collector, what string, ok func(*Snapshot) bool) *Snapshot {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var (
		last    *Snapshot
		lastErr error
	)
	for time.Now().Before(deadline) {
		s, err := c.Refresh(context.Background())
		if err == nil {
			last = s
			if ok(s) {
				return s
			}
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil {
		t.Fatalf("never saw %s: no refresh succeeded (last error %v)", what, lastErr)
	}
	t.Fatalf("never saw %s; last snapshot: state %q members %+v (last error %v)", what, last.GroupState, last.Members, lastErr)
	return nil
}

func assignment(s *Snapshot) map[string][]int32 {
	m := map[string][]int32{}
	for _, mem := range s.Members {
		m[mem.ClientID] = append(m[mem.ClientID], mem.Partitions...)
	}
	return m
}

func TestCollectorMembersJoinAndLeave(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	c := newTestCollector(t, cfg, pipeline.DefaultInput, "workers")

	stopA := joinGroup(t, cfg, "workers", "worker-a")
	defer stopA()
	s := waitSnapshot(t, c, "worker-a owning all 12 partitions", func(s *Snapshot) bool {
		return s.GroupState == "Stable" && len(s.Members) == 1 && len(s.Members[0].Partitions) == 12
	})
	if m := s.Members[0]; m.ClientID != "worker-a" || m.MemberID == "" || m.Host == "" {
		t.Errorf("member = %+v", m)
	}
	for _, p := range s.Partitions {
		if p.Member != "worker-a" {
			t.Errorf("p%d owner %q, want worker-a", p.Partition, p.Member)
		}
	}

	stopB := joinGroup(t, cfg, "workers", "worker-b")
	s = waitSnapshot(t, c, "two members splitting the partitions", func(s *Snapshot) bool {
		a := assignment(s)
		return s.GroupState == "Stable" && len(s.Members) == 2 && len(a["worker-a"]) > 0 && len(a["worker-b"]) > 0 &&
			len(a["worker-a"])+len(a["worker-b"]) == 12
	})
	a := assignment(s)
	all := append(append([]int32{}, a["worker-a"]...), a["worker-b"]...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i, p := range all {
		if p != int32(i) {
			t.Fatalf("assignments overlap or miss partitions: a=%v b=%v", a["worker-a"], a["worker-b"])
		}
	}
	if len(a["worker-a"]) != 6 || len(a["worker-b"]) != 6 {
		t.Errorf("unbalanced: a=%v b=%v", a["worker-a"], a["worker-b"])
	}
	for _, p := range s.Partitions {
		want := "worker-a"
		if contains(a["worker-b"], p.Partition) {
			want = "worker-b"
		}
		if p.Member != want {
			t.Errorf("p%d owner %q, want %q", p.Partition, p.Member, want)
		}
	}

	stopB() // leaves the group
	waitSnapshot(t, c, "worker-a alone again after worker-b left", func(s *Snapshot) bool {
		return s.GroupState == "Stable" && len(s.Members) == 1 && s.Members[0].ClientID == "worker-a" && len(s.Members[0].Partitions) == 12
	})
	stopA()
	waitSnapshot(t, c, "an empty group after the last member left", func(s *Snapshot) bool {
		return s.GroupState == "Empty" && len(s.Members) == 0
	})
}

func contains(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func TestCollectorUnknownTopicAndGroup(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()

	_, err := newTestCollector(t, cfg, "no_such_topic", pipeline.DefaultGroup).Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"no_such_topic" does not exist`) || !strings.Contains(err.Error(), "--input") {
		t.Errorf("unknown topic: err = %v", err)
	}

	// A typo for a group that exists: the group is not found, nothing is
	// OK, and the warning names the group that commits on the topic.
	produce(t, cfg, pipeline.DefaultInput, map[int32]int{0: 5, 1: 7})
	commit(t, cfg, pipeline.DefaultGroup, pipeline.DefaultInput, map[int32]int64{0: 5})
	c := newTestCollector(t, cfg, pipeline.DefaultInput, "tf_serving_grp")
	s := refresh(t, c)
	if s.GroupState != "Dead" {
		t.Errorf("unknown group state %q, want Dead", s.GroupState)
	}
	if len(s.Members) != 0 || s.TotalLag != 12 || s.Status != StatusNotFound {
		t.Errorf("unknown group: members %v total %d status %v, want none, 12 (no commit, earliest) and NOTFOUND", s.Members, s.TotalLag, s.Status)
	}
	for _, p := range s.Partitions {
		if p.Committed != -1 || p.LagBasis != LagNoCommit {
			t.Errorf("p%d: committed %d basis %s, want -1 and no_commit", p.Partition, p.Committed, p.LagBasis)
		}
	}
	if len(s.Warnings) != 1 || s.Warnings[0].Code != WarnGroupNotFound ||
		!strings.Contains(s.Warnings[0].Message, `group "tf_serving_grp" does not exist`) ||
		!strings.Contains(s.Warnings[0].Message, "groups with commits on ai_input: tf_serving_group (set --group)") {
		t.Errorf("warnings %+v, want group_not_found naming tf_serving_group", s.Warnings)
	}
	// The lookup (ListGroups, then FindCoordinator + OffsetFetch for the
	// one other group) is not repeated every refresh.
	if s2 := refresh(t, c); s2.Requests != 3 || len(s2.Warnings) != 1 || s2.Warnings[0].Message != s.Warnings[0].Message {
		t.Errorf("second refresh: %d requests, warnings %+v; want 3 and the same warning from the cached lookup", s2.Requests, s2.Warnings)
	}
}

func TestCollectorUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewCollector(Config{Brokers: []string{addr}, DialTimeout: time.Second}, pipeline.DefaultInput, pipeline.DefaultGroup)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "--brokers") {
		t.Fatalf("err = %v, want it to name %s and --brokers", err, addr)
	}
}

// TestCollectorBurrowStop drives Burrow's STOP end to end: commits, then
// more records and no consumer.
func TestCollectorBurrowStop(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	produce(t, cfg, pipeline.DefaultDLQ, map[int32]int{0: 10, 1: 10, 2: 10})
	commit(t, cfg, "stopped", pipeline.DefaultDLQ, map[int32]int64{0: 5, 1: 10, 2: 10})
	c := newTestCollector(t, cfg, pipeline.DefaultDLQ, "stopped", WithWindow(3))
	var s *Snapshot
	for i := 0; i < 3; i++ {
		s = refresh(t, c)
		if i < 2 && s.Status != StatusOK {
			t.Errorf("refresh %d: status %v before the window is full, want OK", i, s.Status)
		}
	}
	if s.Partitions[0].Status != StatusStop || s.Partitions[1].Status != StatusOK {
		t.Errorf("statuses p0 %v p1 %v, want STOP and OK", s.Partitions[0].Status, s.Partitions[1].Status)
	}
	if s.Status != StatusErr {
		t.Errorf("group status %v, want ERR (a STOP partition)", s.Status)
	}
	// The consumer comes back and catches up: OK again.
	commit(t, cfg, "stopped", pipeline.DefaultDLQ, map[int32]int64{0: 10})
	if s = refresh(t, c); s.Partitions[0].Status != StatusOK || s.Status != StatusOK {
		t.Errorf("after catching up: p0 %v group %v, want OK", s.Partitions[0].Status, s.Status)
	}
}

// TestCollectorPerBrokerRequests checks batching on a 3-broker cluster and
// that a leader move is picked up.
func TestCollectorPerBrokerRequests(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true; c.Nodes = 3 })
	cfg := b.ClientConfig()
	produce(t, cfg, pipeline.DefaultInput, map[int32]int{0: 5, 5: 7})
	// A group with a commit: one with nothing on the topic would also list
	// the cluster's groups (TestCollectorUnknownTopicAndGroup).
	commit(t, cfg, pipeline.DefaultGroup, pipeline.DefaultInput, map[int32]int64{0: 5})
	c := newTestCollector(t, cfg, pipeline.DefaultInput, pipeline.DefaultGroup)
	s := refresh(t, c)
	leaders := map[int32]bool{}
	for _, p := range s.Partitions {
		leaders[p.Leader] = true
	}
	// FindCoordinator + (newest + oldest) per leader + OffsetFetch + DescribeGroups
	// (NewCollector already read the metadata)
	if want := 1 + 2*len(leaders) + 2; s.Requests != want {
		t.Errorf("first refresh: %d requests, want %d for %d leaders", s.Requests, want, len(leaders))
	}
	s = refresh(t, c)
	if want := len(leaders) + 2; s.Requests != want {
		t.Errorf("steady state: %d requests, want %d for %d leaders", s.Requests, want, len(leaders))
	}
	if s.Brokers != 3 {
		t.Errorf("brokers %d, want 3", s.Brokers)
	}

	old := s.Partitions[5].Leader
	next := (old + 1) % 3
	if err := b.Cluster().MoveTopicPartition(pipeline.DefaultInput, 5, next); err != nil {
		t.Fatal(err)
	}
	produce(t, cfg, pipeline.DefaultInput, map[int32]int{5: 1})
	s = waitSnapshot(t, c, "partition 5 on its new leader", func(s *Snapshot) bool {
		return s.Partitions[5].Leader == next && s.Partitions[5].HighWatermark == 8
	})
	if s.Partitions[0].HighWatermark != 5 {
		t.Errorf("p0 hwm %d after the move, want 5", s.Partitions[0].HighWatermark)
	}
}

func TestCollectorRun(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	c := newTestCollector(t, b.ClientConfig(), pipeline.DefaultInput, pipeline.DefaultGroup)
	ctx, cancel := context.WithCancel(context.Background())
	var got []*Snapshot
	c.Run(ctx, 10*time.Millisecond, func(s *Snapshot, err error) {
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		got = append(got, s)
		if len(got) == 3 {
			cancel()
		}
	})
	if len(got) != 3 {
		t.Fatalf("Run delivered %d snapshots, want 3", len(got))
	}
	for i := 1; i < 3; i++ {
		if !got[i].Time.After(got[i-1].Time) {
			t.Errorf("snapshot %d not newer than %d", i, i-1)
		}
	}
	c.Close()
	if _, err := c.Refresh(context.Background()); err == nil {
		t.Error("Refresh after Close succeeded")
	}
}

// TestCollectorExactLagTime: on the first refresh interpolation knows
// nothing, so the record timestamp at the committed offset gives the lag.
func TestCollectorExactLagTime(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	sc, _ := cfg.Sarama()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Compression = sarama.CompressionZSTD // timestamps survive compressed batches
	p, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour)
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		for _, part := range []int32{2, 5} { // 5: never committed
			msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: part, Value: sarama.StringEncoder("x"), Timestamp: hourAgo.Add(time.Duration(i) * time.Minute)})
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	p.Close()
	commit(t, cfg, "slow", pipeline.DefaultInput, map[int32]int64{2: 4, 3: 0})

	plain := refresh(t, newTestCollector(t, cfg, pipeline.DefaultInput, "slow"))
	if got := plain.Partitions[2].LagSeconds; got != -1 {
		t.Errorf("without exact lag time, first refresh lag seconds = %v, want -1 (unknown)", got)
	}
	s := refresh(t, newTestCollector(t, cfg, pipeline.DefaultInput, "slow", WithExactLagTime()))
	// Record 4 was stamped an hour ago plus 4 minutes: 56 minutes behind.
	if got, want := s.Partitions[2].LagSeconds, 56*60.0; got < want-30 || got > want+30 {
		t.Errorf("exact lag seconds = %v, want about %v", got, want)
	}
	// Without a commit the group starts at the log start: record 0, an hour old.
	if got, want := s.Partitions[5].LagSeconds, 60*60.0; got < want-30 || got > want+30 {
		t.Errorf("no-commit partition exact lag seconds = %v, want about %v (its first record)", got, want)
	}
	if got := s.Partitions[3].LagSeconds; got != 0 {
		t.Errorf("caught-up partition lag seconds = %v, want 0", got)
	}
	if plain.Requests+1 != s.Requests {
		t.Errorf("exact lag time cost %d extra requests, want 1 (one Fetch for the one leader)", s.Requests-plain.Requests)
	}
}

// TestCollectorSurvivesBrokerRestart: a console keeps its collector while
// the broker restarts; refreshes fail naming the address, then recover.
func TestCollectorSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b1, err := StartBroker(context.Background(), BrokerConfig{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := b1.Addr()
	cfg := b1.ClientConfig()
	cfg.DialTimeout, cfg.RequestTimeout = time.Second, time.Second
	produce(t, cfg, pipeline.DefaultInput, map[int32]int{1: 7})
	commit(t, cfg, "g", pipeline.DefaultInput, map[int32]int64{1: 2})
	c := newTestCollector(t, cfg, pipeline.DefaultInput, "g")
	if s := refresh(t, c); s.Partitions[1].Lag != 5 {
		t.Fatalf("p1 lag %d, want 5", s.Partitions[1].Lag)
	}
	b1.Close()
	if _, err := c.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("refresh with the broker down: err = %v, want the address %s in it", err, addr)
	}
	b2, err := StartBroker(context.Background(), BrokerConfig{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer b2.Close()
	s := waitSnapshot(t, c, "a refresh after the restart", func(*Snapshot) bool { return true })
	if p := s.Partitions[1]; p.HighWatermark != 7 || p.Committed != 2 || p.Lag != 5 {
		t.Errorf("after restart p1 = %+v, want hwm 7 committed 2 lag 5 (persisted)", p)
	}
}

// TestCollectorOneRefreshInFlight: while a slow refresh runs, a second one
// waits, and gives up when its context ends.
func TestCollectorOneRefreshInFlight(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	c := newTestCollector(t, b.ClientConfig(), pipeline.DefaultInput, pipeline.DefaultGroup)
	refresh(t, c) // warm: coordinator and log start known
	slow := make(chan struct{})
	b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		<-slow // hold the broker until the second caller has given up
		return nil, nil, false
	})
	first := make(chan error, 1)
	go func() {
		_, err := c.Refresh(context.Background())
		first <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the first refresh take the slot
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second refresh while one is in flight: err = %v, want it to wait and hit its deadline", err)
	}
	close(slow)
	if err := <-first; err != nil {
		t.Errorf("first refresh: %v", err)
	}
}

// TestCollectorRefreshTimeout: a broker that stops answering fails the
// refresh within the request timeout, naming the broker.
func TestCollectorRefreshTimeout(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	cfg.RequestTimeout = 300 * time.Millisecond
	c := newTestCollector(t, cfg, pipeline.DefaultInput, pipeline.DefaultGroup)
	refresh(t, c)
	b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		return nil, nil, true // handled, never answered: the client times out
	})
	_, err := c.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), b.Addr()) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout naming %s", err, b.Addr())
	}
	if testing.Verbose() {
		t.Log(err)
	}
}

// TestCollectorRebalanceWaitsForVanishedMember: a member that stopped
// heartbeating without leaving (a SIGKILLed worker) holds the group in
// PreparingRebalance when another joins; the snapshot says for how long and
// whom it waits for, until the session timeout drops the dead one.
func TestCollectorRebalanceWaitsForVanishedMember(t *testing.T) {
	b := startTestBroker(t, func(c *BrokerConfig) { c.Ephemeral = true })
	cfg := b.ClientConfig()
	produce(t, cfg, pipeline.DefaultInput, map[int32]int{0: 10})
	c := newTestCollector(t, cfg, pipeline.DefaultInput, "stuck")
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	clustertest.VanishedMember(t, cfg.Brokers, sc, "stuck", pipeline.DefaultInput, "worker-dead", 10*time.Second)
	waitSnapshot(t, c, "the vanished member owning every partition", func(s *Snapshot) bool {
		return s.GroupState == "Stable" && len(s.Members) == 1 && len(s.Members[0].Partitions) == 12
	})
	joined := time.Now()
	joinGroup(t, cfg, "stuck", "worker-new")
	s := waitSnapshot(t, c, "a rebalance lasting 5 s, waiting for worker-dead", func(s *Snapshot) bool {
		return s.Rebalance != nil && s.Rebalance.Seconds >= 5
	})
	rb := s.Rebalance
	if rb.State != "PreparingRebalance" || rb.AtLeast || !rb.AwaitedKnown || len(rb.Awaited) != 1 || rb.Awaited[0].ClientID != "worker-dead" || rb.Members != 2 {
		t.Errorf("rebalance = %+v, want PreparingRebalance, timed from its start, awaiting worker-dead of 2 members", rb)
	}
	if rb.Since.Before(joined) {
		t.Errorf("rebalance since %v, before worker-new joined at %v", rb.Since, joined)
	}
	var warn string
	for _, w := range s.Warnings {
		if w.Code == WarnRebalancing {
			warn = w.Message
		}
	}
	if !strings.Contains(warn, "has been rebalancing for") || !strings.Contains(warn, "worker-dead on ") || strings.Contains(warn, "worker-new") {
		t.Errorf("rebalancing warning %q, want the duration and worker-dead (not worker-new)", warn)
	}
	waitSnapshot(t, c, "worker-new alone once worker-dead's session timed out", func(s *Snapshot) bool {
		return s.GroupState == "Stable" && len(s.Members) == 1 && s.Members[0].ClientID == "worker-new" && s.Rebalance == nil
	})
}
