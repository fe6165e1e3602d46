package worker

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/pipeline"
)

// Stats().Duplicates promises to count the records a pool serves again after
// a crash or rebalance. Here a member crashes having served records it never
// committed: its partitions go to the other member, which re-reads them from
// the start, and every one of those records is served twice. The counter
// must say exactly that many, and so must the output topic.
func TestDuplicatesCountTheRecordsServedAgain(t *testing.T) {
	e := newTestEnv(t)
	p := e.pool(Config{Workers: 2})
	waitFor(t, "both members own partitions", 20*time.Second, func() bool {
		s := p.Stats()
		return len(s.Members) == 2 && len(s.Members[0].Partitions) > 0 && len(s.Members[1].Partitions) > 0
	})
	p.mu.Lock()
	victim := p.members[1]
	p.mu.Unlock()
	victim.noCommit.Store(true) // it serves and acks, but commits nothing

	in := newInput()
	const n = 600
	e.produce(0, n, 0, in)
	waitFor(t, "every record served once", 30*time.Second, func() bool { return p.Stats().Produced == n })
	if d := p.Stats().Duplicates; d != 0 {
		t.Fatalf("Duplicates = %d before anything was served twice", d)
	}

	st, _ := victim.stats()
	served := e.recordsIn(st.Partitions)
	if served == 0 {
		t.Fatalf("the victim's partitions %v hold no records: nothing to re-deliver", st.Partitions)
	}
	p.mu.Lock()
	p.members = p.members[:1]
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	victim.stop(ctx, false)
	cancel()

	waitFor(t, "the survivor to serve the victim's records again", 30*time.Second, func() bool {
		return p.Stats().Produced == uint64(n+served)
	})
	o := e.collect(in, 30*time.Second)
	if got := p.Stats().Duplicates; got != uint64(served) {
		t.Errorf("Stats().Duplicates = %d, want %d (the records of partitions %v, served twice)", got, served, st.Partitions)
	}
	if got := o.duplicates(); got != served {
		t.Errorf("%s holds %d duplicates, want %d", pipeline.DefaultOutput, got, served)
	}
}

// recordsIn is how many records the input topic holds in these partitions.
func (e *testEnv) recordsIn(parts []int32) int {
	e.t.Helper()
	sc, err := e.kafka.Sarama()
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := sarama.NewClient(e.kafka.Brokers, sc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	total := 0
	for _, part := range parts {
		hw, err := c.GetOffset(pipeline.DefaultInput, part, sarama.OffsetNewest)
		if err != nil {
			e.t.Fatal(err)
		}
		lo, err := c.GetOffset(pipeline.DefaultInput, part, sarama.OffsetOldest)
		if err != nil {
			e.t.Fatal(err)
		}
		total += int(hw - lo)
	}
	return total
}
