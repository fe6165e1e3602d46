package worker

import (
	"sync"
	"sync/atomic"
)

// partitionTracker keeps at-least-once for one claimed partition: records are
// added in offset order as they are read, acknowledged in any order as their
// results (or DLQ records) are acked by Kafka, and only the contiguous acked
// prefix is marked for commit. A record still in flight therefore holds back
// every later offset of its partition, so a crash or rebalance re-delivers it
// instead of skipping it.
type partitionTracker struct {
	topic     string
	partition int32

	mu      sync.Mutex
	headSeq uint64  // sequence number of offs[head]
	head    int     // index of the oldest unacked record in offs/done
	offs    []int64 // offsets in read order
	done    []bool
	marked  int64 // next offset to consume, as last marked; -1 before any
	revoked bool  // the session that owned this claim has ended
	mark    func(next int64)
	onMark  func(topic string, partition int32, next int64)

	// inflight counts records handed to the pipeline (batcher, Predict,
	// producer) and not yet acked or handed back; a draining claim waits for
	// it to reach zero.
	inflight atomic.Int64
}

func (t *partitionTracker) begin()        { t.inflight.Add(1) }
func (t *partitionTracker) end()          { t.inflight.Add(-1) }
func (t *partitionTracker) inFlight() int { return int(t.inflight.Load()) }

func newPartitionTracker(topic string, partition int32, mark func(next int64)) *partitionTracker {
	return &partitionTracker{topic: topic, partition: partition, marked: -1, mark: mark}
}

// add registers the next record read from the partition and returns its
// sequence number for ack. Offsets must be increasing.
func (t *partitionTracker) add(offset int64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Compact when the acked prefix dominates, so memory follows the number
	// in flight rather than the number ever read.
	if t.head > 0 && t.head >= len(t.offs)/2 {
		n := copy(t.offs, t.offs[t.head:])
		copy(t.done, t.done[t.head:])
		t.offs = t.offs[:n]
		t.done = t.done[:n]
		t.head = 0
	}
	seq := t.headSeq + uint64(len(t.offs)-t.head)
	t.offs = append(t.offs, offset)
	t.done = append(t.done, false)
	return seq
}

// ack records that the record with sequence seq is safely answered and marks
// the new contiguous prefix, if it grew. It reports the offset marked (next
// offset to consume) or -1.
func (t *partitionTracker) ack(seq uint64) int64 {
	t.mu.Lock()
	idx := t.head + int(seq-t.headSeq)
	if seq < t.headSeq || idx >= len(t.offs) {
		t.mu.Unlock()
		return -1 // already acked (a duplicate ack) or never added
	}
	t.done[idx] = true
	if idx != t.head {
		t.mu.Unlock()
		return -1
	}
	last := int64(-1)
	for t.head < len(t.offs) && t.done[t.head] {
		last = t.offs[t.head]
		t.head++
		t.headSeq++
	}
	next := last + 1
	t.marked = next
	revoked := t.revoked
	mark, onMark := t.mark, t.onMark
	t.mu.Unlock()
	// A revoked session can no longer commit; the new owner re-reads from
	// the last commit, which is the at-least-once contract.
	if !revoked && mark != nil {
		mark(next)
	}
	if onMark != nil {
		onMark(t.topic, t.partition, next)
	}
	return next
}

// outstanding is how many records were read but not yet acked.
func (t *partitionTracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.offs) - t.head
}

// markedOffset is the next offset to consume as last marked, or -1.
func (t *partitionTracker) markedOffset() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.marked
}

// revoke stops marking: the claim's session is over.
func (t *partitionTracker) revoke() {
	t.mu.Lock()
	t.revoked = true
	t.mu.Unlock()
}

func (t *partitionTracker) isRevoked() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.revoked
}
