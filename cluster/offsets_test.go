package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
)

// resetFixture is a topic of 3 partitions with records at known times and
// a group that committed on some of them.
type resetFixture struct {
	b     *Broker
	cfg   Config
	topic string
	group string
	base  time.Time
}

func newResetFixture(t *testing.T) *resetFixture {
	const topic, group = "reset_in", "reset_group"
	b := startTestBroker(t, func(c *BrokerConfig) {
		c.Ephemeral = true
		c.Topics = append(pipeline.Topics(pipeline.DefaultRetention), pipeline.TopicSpec{Name: topic, Partitions: 3})
	})
	f := &resetFixture{b: b, cfg: b.ClientConfig(), topic: topic, group: group, base: time.Now().Add(-2 * time.Hour).Truncate(time.Second)}
	sc, _ := f.cfg.Sarama()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(f.cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	// Partition p holds 10*(p+1) records, one a minute from base+p
	// minutes; partition 1 has one record out of time order, as producers
	// with their own clocks write them.
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 10*int(p+1); i++ {
			ts := f.base.Add(time.Duration(int(p)+i) * time.Minute)
			if p == 1 && i == 5 {
				ts = f.base.Add(-time.Hour)
			}
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder("v"), Timestamp: ts}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The group committed 4 on partition 0 and 15 on 1, nothing on 2.
	client := newTestClient(t, f.cfg)
	defer client.Close()
	coord, err := client.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	req := sarama.NewOffsetCommitRequest(client.Config(), group)
	req.AddBlock(topic, 0, 4, 0, "")
	req.AddBlock(topic, 1, 15, 0, "")
	if _, err := coord.CommitOffset(req); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *resetFixture) collector(t *testing.T) *Collector {
	c, err := NewCollector(f.cfg, f.topic, f.group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestResetPlan(t *testing.T) {
	f := newResetFixture(t)
	c := f.collector(t)
	ctx := context.Background()
	now := time.Now()
	for _, tt := range []struct {
		to    string
		parts []int32
		want  []int64 // new offsets of the partitions planned
		skip  int64
		rerd  int64
		note  string
	}{
		{to: "earliest", want: []int64{0, 0, 0}, rerd: 4 + 15},
		{to: "latest", want: []int64{10, 20, 30}, skip: 6 + 5 + 30},
		{to: "12", want: []int64{10, 12, 12}, skip: 6 + 12, rerd: 3, note: "past the end"},
		{to: "-3", want: []int64{1, 12, 0}, rerd: 3 + 3, note: "fewer than 3 records back"},
		{to: "-30", parts: []int32{1}, want: []int64{0}, rerd: 15},
		{to: "latest", parts: []int32{2, 0}, want: []int64{10, 30}, skip: 6 + 30},
	} {
		target, err := ParseResetTarget(tt.to, now)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := c.PlanReset(ctx, target, tt.parts)
		if err != nil {
			t.Fatalf("--to %s: %v", tt.to, err)
		}
		var got []int64
		notes := ""
		for _, p := range plan.Partitions {
			got = append(got, p.New)
			notes += p.Note
			if p.LagAfter != p.HighWatermark-p.New {
				t.Errorf("--to %s p%d: lag after %d", tt.to, p.Partition, p.LagAfter)
			}
		}
		if !equalInts(got, tt.want) || plan.Skipped != tt.skip || plan.Reread != tt.rerd || !strings.Contains(notes, tt.note) {
			t.Errorf("--to %s %v: new %v skipped %d reread %d notes %q; want %v, %d, %d, %q", tt.to, tt.parts, got, plan.Skipped, plan.Reread, notes, tt.want, tt.skip, tt.rerd, tt.note)
		}
		if p := plan.Partitions[len(plan.Partitions)-1]; tt.parts == nil && (p.Current != -1 || p.LagBefore != 30) {
			t.Errorf("partition 2 has no commit: current %d lag before %d, want -1 and the whole log", p.Current, p.LagBefore)
		}
	}
	if _, err := c.PlanReset(ctx, ResetTarget{Kind: ResetToLatest}, []int32{3}); err == nil || !strings.Contains(err.Error(), "no partition 3") {
		t.Errorf("unknown partition: %v", err)
	}
	missing, err := NewCollector(f.cfg, "no_such_topic", f.group)
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	if _, err := missing.PlanReset(ctx, ResetTarget{Kind: ResetToLatest}, nil); err == nil || !strings.Contains(err.Error(), `"no_such_topic" does not exist`) || !strings.Contains(err.Error(), "--input") {
		t.Errorf("unknown topic: %v", err)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestResetToTimeMatchesLibrdkafka: a reset to a time commits, on every
// partition, the offset librdkafka's offsets_for_times gives for it (-1,
// no record that late, being the end), out-of-order timestamps included.
func TestResetToTimeMatchesLibrdkafka(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import confluent_kafka").Run(); err != nil {
		t.Skip("needs /usr/bin/python3 with confluent_kafka (Debian python3-confluent-kafka; `make test` installs it)")
	}
	f := newResetFixture(t)
	c := f.collector(t)
	ctx := context.Background()
	times := []time.Time{
		f.base.Add(-3 * time.Hour), // before everything
		f.base.Add(-time.Hour),     // exactly the odd record
		f.base,                     // exactly the first
		f.base.Add(4*time.Minute + 30*time.Second),   // between records
		f.base.Add(9 * time.Minute),                  // the last of partition 0
		f.base.Add(9*time.Minute + time.Millisecond), // past partition 0
		f.base.Add(40 * time.Minute),                 // past everything
	}
	args := []string{"-c", `
import sys, json
from confluent_kafka import Consumer, TopicPartition
c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'inferops-offsets-for-times'})
out = []
for t in sys.argv[4:]:
    res = c.offsets_for_times([TopicPartition(sys.argv[2], p, int(t)) for p in range(int(sys.argv[3]))], timeout=10)
    out.append([r.offset for r in res])
c.close()
print(json.dumps(out))
`, f.cfg.Brokers[0], f.topic, "3"}
	for _, ts := range times {
		args = append(args, strconv.FormatInt(ts.UnixMilli(), 10))
	}
	out, err := exec.Command("/usr/bin/python3", args...).Output()
	if err != nil {
		t.Fatalf("offsets_for_times: %v", err)
	}
	var want [][]int64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	hw := []int64{10, 20, 30}
	for i, ts := range times {
		plan, err := c.PlanReset(ctx, ResetTarget{Kind: ResetToTime, Time: ts}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ResetOffsets(ctx, plan); err != nil {
			t.Fatal(err)
		}
		snap, err := c.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for p, lib := range want[i] {
			if lib == -1 {
				lib = hw[p] // OFFSET_END: no record at or after the time
			}
			if got := snap.Partitions[p].Committed; got != lib {
				t.Errorf("reset to %s: partition %d committed %d, offsets_for_times says %d (%v)", ts.Format(time.RFC3339Nano), p, got, lib, want[i])
			}
		}
	}
	t.Logf("offsets_for_times at %d times: %v", len(times), want)

	// Records deleted by retention: a time before the oldest one kept is
	// an error naming the fix, not a silent reset to the log start.
	if err := f.b.Cluster().DeleteRecords(f.topic, 2, 5); err != nil {
		t.Fatal(err)
	}
	_, err = c.PlanReset(ctx, ResetTarget{Kind: ResetToTime, Time: f.base}, nil)
	if err == nil || !strings.Contains(err.Error(), "before the log start") || !strings.Contains(err.Error(), "partition 2") || !strings.Contains(err.Error(), "--to earliest") {
		t.Errorf("time before the log start: %v", err)
	}
}

// TestResetRefusesGroupWithMembers: a live member makes the reset fail
// with the members named and the fix; the plan is still shown.
func TestResetRefusesGroupWithMembers(t *testing.T) {
	f := newResetFixture(t)
	sc, _ := f.cfg.Sarama()
	stop := clustertest.Member(t, f.cfg.Brokers, sc, f.group, f.topic, "inferops-host1-w1")
	c := f.collector(t)
	ctx := context.Background()
	var plan *ResetPlan
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		plan, err = c.PlanReset(ctx, ResetTarget{Kind: ResetToLatest}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Members) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(plan.Members) != 1 {
		t.Fatalf("plan members %+v, want the live one", plan.Members)
	}
	err := c.ResetOffsets(ctx, plan)
	if !errors.Is(err, ErrGroupHasMembers) || !strings.Contains(err.Error(), "inferops-host1-w1") || !strings.Contains(err.Error(), "--stop-fleet") {
		t.Fatalf("reset with a member: %v", err)
	}
	stop()
	deadline = time.Now().Add(20 * time.Second)
	for {
		err = c.ResetOffsets(ctx, plan)
		if !errors.Is(err, ErrGroupHasMembers) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("reset after the member left: %v", err)
	}
	snap, err := c.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.TotalLag != 0 {
		t.Errorf("lag %d after a reset to latest", snap.TotalLag)
	}
}
