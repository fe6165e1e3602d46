package worker

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestTrackerMarksContiguousPrefix(t *testing.T) {
	tests := []struct {
		name    string
		offsets []int64
		acks    []int   // indexes into offsets, in ack order
		marks   []int64 // offset marked after each ack, -1 = none
	}{
		{name: "in order", offsets: []int64{0, 1, 2}, acks: []int{0, 1, 2}, marks: []int64{1, 2, 3}},
		{name: "reverse", offsets: []int64{0, 1, 2}, acks: []int{2, 1, 0}, marks: []int64{-1, -1, 3}},
		{name: "gap then fill", offsets: []int64{10, 11, 12, 13}, acks: []int{1, 0, 3, 2}, marks: []int64{-1, 12, -1, 14}},
		{name: "sparse offsets (compaction, txn markers)", offsets: []int64{5, 9, 20}, acks: []int{0, 2, 1}, marks: []int64{6, -1, 21}},
		{name: "duplicate ack ignored", offsets: []int64{0, 1}, acks: []int{0, 0, 1}, marks: []int64{1, -1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var marked []int64
			tr := newPartitionTracker("ai_input", 0, func(next int64) { marked = append(marked, next) })
			seqs := make([]uint64, len(tt.offsets))
			for i, o := range tt.offsets {
				seqs[i] = tr.add(o)
			}
			for i, a := range tt.acks {
				if got := tr.ack(seqs[a]); got != tt.marks[i] {
					t.Fatalf("ack #%d (offset %d) marked %d, want %d", i, tt.offsets[a], got, tt.marks[i])
				}
			}
			if tr.outstanding() != 0 {
				t.Fatalf("outstanding = %d after acking all", tr.outstanding())
			}
			if last := marked[len(marked)-1]; last != tt.offsets[len(tt.offsets)-1]+1 {
				t.Fatalf("last mark %d", last)
			}
		})
	}
}

func TestTrackerRevokedDoesNotMark(t *testing.T) {
	calls := 0
	tr := newPartitionTracker("t", 1, func(int64) { calls++ })
	s := tr.add(7)
	tr.revoke()
	if got := tr.ack(s); got != 8 {
		t.Fatalf("ack = %d", got)
	}
	if calls != 0 {
		t.Fatal("a revoked claim must not mark offsets")
	}
}

// Random concurrent acks: the marks must be monotonic and never pass an
// unacked offset.
func TestTrackerConcurrentAcks(t *testing.T) {
	const n = 20000
	var mu sync.Mutex
	acked := make([]bool, n)
	last := int64(-1)
	var tr *partitionTracker
	tr = newPartitionTracker("t", 0, func(next int64) {
		mu.Lock()
		defer mu.Unlock()
		if next < last {
			t.Errorf("mark went backwards: %d after %d", next, last)
		}
		for o := int64(0); o < next; o++ {
			if !acked[o] {
				t.Errorf("marked %d but offset %d is not acked", next, o)
				return
			}
		}
		last = next
	})
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = tr.add(int64(i))
	}
	perm := rand.Perm(n)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				o := perm[i]
				mu.Lock()
				acked[o] = true
				mu.Unlock()
				tr.ack(seqs[o])
			}
		}(w)
	}
	wg.Wait()
	if tr.markedOffset() != n {
		t.Fatalf("marked %d, want %d", tr.markedOffset(), n)
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	b := backoff{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt, want := range []time.Duration{10, 20, 40, 80, 80, 80} {
		want *= time.Millisecond
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := b.delay(attempt)
			if d < want/2 || d >= want {
				t.Fatalf("attempt %d: %v outside [%v,%v)", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("attempt %d: no jitter (%d distinct values)", attempt, len(seen))
		}
	}
}

func TestBreakerLifecycle(t *testing.T) {
	var changes []string
	b := newBreaker(3, 20*time.Millisecond, 100*time.Millisecond)
	b.OnChange = func(from, to string) { changes = append(changes, from+">"+to) }
	ctx := context.Background()

	for i := 0; i < 2; i++ {
		p, _ := b.acquire(ctx)
		b.failure(p)
	}
	if b.State() != BreakerClosed {
		t.Fatal("opened before the threshold")
	}
	p, _ := b.acquire(ctx)
	b.failure(p)
	if b.State() != BreakerOpen {
		t.Fatalf("state %s after 3 failures", b.State())
	}

	// While open, callers wait about the cooldown, then exactly one probes.
	start := time.Now()
	probe, err := b.acquire(ctx)
	if err != nil || !probe {
		t.Fatalf("acquire after cooldown: probe=%v err=%v", probe, err)
	}
	if waited := time.Since(start); waited < 10*time.Millisecond {
		t.Fatalf("did not wait for the cooldown (%v)", waited)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	if _, err := b.acquire(short); err == nil {
		t.Fatal("a second caller got through while the probe is out")
	}
	cancel()

	// A failed probe re-opens with a longer cooldown.
	b.failure(true)
	if b.State() != BreakerOpen {
		t.Fatal("failed probe did not re-open")
	}
	probe, _ = b.acquire(ctx)
	b.success(probe)
	if b.State() != BreakerClosed {
		t.Fatal("successful probe did not close")
	}
	want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	if len(r.list()) != 0 {
		t.Fatal("new ring not empty")
	}
	for i := 1; i <= 5; i++ {
		r.add(i)
	}
	got := r.list()
	if len(got) != 3 || got[0] != 3 || got[2] != 5 {
		t.Fatalf("ring = %v", got)
	}
}

func TestWindowSummary(t *testing.T) {
	w := newWindow()
	for i := 1; i <= 100; i++ {
		w.record(time.Duration(i) * time.Millisecond)
	}
	s := w.summary()
	if s.Count != 100 || s.P50 < 49*time.Millisecond || s.P50 > 51*time.Millisecond || s.Max < 99*time.Millisecond || s.Max > 101*time.Millisecond {
		t.Fatalf("summary %+v", s)
	}
	for i := 0; i < windowSlices; i++ {
		w.rotate()
	}
	if s := w.summary(); s.Count != 0 {
		t.Fatalf("window kept %d values after sliding past them", s.Count)
	}
}
