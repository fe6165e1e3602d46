// Package clustertest holds Kafka fixtures for tests of several packages
// (cluster, the console adapter, the commands). Tests only.
package clustertest

import (
	"errors"
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
