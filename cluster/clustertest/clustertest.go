// Package clustertest holds Kafka fixtures for tests of several packages
// (cluster, the console adapter, the commands). Tests only.
package clustertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// VanishedMember joins group as one consumer member that takes every
// partition of topic, then never heartbeats again and never leaves: what a
// SIGKILLed worker looks like to the coordinator. The coordinator holds it
// until session runs out, so a member joining meanwhile finds the group in
// PreparingRebalance, waiting for it. It returns the member id.
//
// It speaks the group protocol itself (JoinGroup, SyncGroup) because every
// client library heartbeats on its own and leaves the group on Close. sc is
// the client config (cluster.Config.Sarama(), which this package cannot
// call: the cluster package's own tests use it); its ClientID is replaced.
func VanishedMember(t testing.TB, brokers []string, sc *sarama.Config, group, topic, clientID string, session time.Duration) string {
	t.Helper()
	c := *sc
	c.ClientID = clientID
	client, err := sarama.NewClient(brokers, &c)
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end of the test, not now: closing the connection is
	// not leaving, but keep it open so nothing about the member changes.
	t.Cleanup(func() { client.Close() })
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	meta := &sarama.ConsumerGroupMemberMetadata{Version: 1, Topics: []string{topic}}
	join := &sarama.JoinGroupRequest{
		Version: 5, GroupId: group, ProtocolType: "consumer",
		SessionTimeout: int32(session / time.Millisecond), RebalanceTimeout: int32(session / time.Millisecond),
	}
	// Every assignor a joiner may bring: the coordinator picks one all
	// members support, and the embedded broker cannot elect none.
	for _, name := range []string{"range", "sticky", "roundrobin", "cooperative-sticky"} {
		if err := join.AddGroupProtocolMetadata(name, meta); err != nil {
			t.Fatal(err)
		}
	}
	var jr *sarama.JoinGroupResponse
	for range 3 { // v4+: the first join only hands out a member id
		if jr, err = coord.JoinGroup(join); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(jr.Err, sarama.ErrMemberIdRequired) {
			break
		}
		join.MemberId = jr.MemberId
	}
	if !errors.Is(jr.Err, sarama.ErrNoError) {
		t.Fatalf("join group %s: %v", group, jr.Err)
	}
	sync := &sarama.SyncGroupRequest{Version: 3, GroupId: group, GenerationId: jr.GenerationId, MemberId: jr.MemberId}
	if err := sync.AddGroupAssignmentMember(jr.MemberId, &sarama.ConsumerGroupMemberAssignment{Topics: map[string][]int32{topic: parts}}); err != nil {
		t.Fatal(err)
	}
	sr, err := coord.SyncGroup(sync)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sr.Err, sarama.ErrNoError) {
		t.Fatalf("sync group %s: %v", group, sr.Err)
	}
	return jr.MemberId
}

// Member runs a live consumer-group member (sarama's, with the range
// assignor, a 6 s session and 300 ms heartbeats) on topic until stop or the
// end of the test; it consumes without committing anything new. stop
// leaves the group.
func Member(t testing.TB, brokers []string, sc *sarama.Config, group, topic, clientID string) (stop func()) {
	t.Helper()
	c := *sc
	c.ClientID = clientID
	c.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	g, err := sarama.NewConsumerGroup(brokers, group, &c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, nopHandler{}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				t.Logf("%s consume: %v", clientID, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			g.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

type nopHandler struct{}

func (nopHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (nopHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (nopHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
	}
	return nil
}

// ReadCommitted reads every record of topic as the inference worker does
// (read_committed: nothing of an aborted or open transaction), with
// sarama's own consumer, up to the end each partition had when it was
// called (a topic still written to is read that far), or until nothing
// new arrives for idle (the end of a transaction is a marker, not a
// record). sc is the client config (see VanishedMember).
func ReadCommitted(t testing.TB, brokers []string, sc *sarama.Config, topic string, idle time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	c := *sc
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(brokers, &c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := cons.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *sarama.ConsumerMessage, 256)
	left := map[int32]int64{} // partition -> the last offset to read
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if end > start {
			left[p] = end - 1
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				msgs <- m
			}
		}()
	}
	var out []*sarama.ConsumerMessage
	for len(left) > 0 {
		select {
		case m := <-msgs:
			if last, ok := left[m.Partition]; ok && m.Offset <= last {
				out = append(out, m)
			}
			if last, ok := left[m.Partition]; ok && m.Offset >= last {
				delete(left, m.Partition)
			}
		case <-time.After(idle):
			return out
		}
	}
	return out
}

// Header is the value of the header key on m, "" without one.
func Header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// Produce writes msgs, each to the partition it names, and waits for every
// ack. sc is left as it is (the producer works on a copy).
func Produce(t testing.TB, brokers []string, sc *sarama.Config, msgs []*sarama.ProducerMessage) {
	t.Helper()
	psc := *sc
	psc.Producer.Return.Successes = true
	psc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(brokers, &psc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// Commit commits offsets (partition -> offset) of topic for group as a
// "simple" commit, generation -1, without joining the group: a group with
// offsets and no live member, as a worker that stopped leaves it.
func Commit(t testing.TB, brokers []string, sc *sarama.Config, group, topic string, offsets map[int32]int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	coord, err := client.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1, RetentionTime: -1}
	for p, o := range offsets {
		req.AddBlock(topic, p, o, 0, "")
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		t.Fatal(err)
	}
	for p, e := range resp.Errors[topic] {
		if !errors.Is(e, sarama.ErrNoError) {
			t.Fatalf("commit p%d: %v", p, e)
		}
	}
}
