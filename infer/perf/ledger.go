package perf

import (
	"sync"
	"sync/atomic"
)

// ledger remembers, per sequence number, when the record was scheduled and
// what happened to it (acked, failed, result received). Results carry only
// the id, so the scheduled time has to live here; the received bit is what
// tells a duplicate (the pipeline is at-least-once) from a first result, and
// what is left unset at the end is the lost records.
//
// Slots live in fixed-size chunks allocated on first use, so a long run costs
// 8 bytes per record and nothing is ever copied or locked on the hot path.
type ledger struct {
	chunks []atomic.Pointer[[chunkSize]atomic.Int64]
	mu     sync.Mutex // chunk allocation only
}

const (
	chunkBits = 16
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 14 // 1 G records per run

	// A slot holds the scheduled time (ns since the run's start, plus one so
	// that zero means "never sent") and three state bits.
	bitReceived = int64(1) << 62
	bitAcked    = int64(1) << 61
	bitFailed   = int64(1) << 60
	timeMask    = bitFailed - 1
)

func newLedger() *ledger {
	return &ledger{chunks: make([]atomic.Pointer[[chunkSize]atomic.Int64], maxChunks)}
}

// slot returns the slot for seq, allocating its chunk when create is set; nil
// when seq is out of range or (without create) was never sent.
func (l *ledger) slot(seq int64, create bool) *atomic.Int64 {
	if seq < 0 {
		return nil
	}
	ci := seq >> chunkBits
	if ci >= maxChunks {
		return nil
	}
	c := l.chunks[ci].Load()
	if c == nil {
		if !create {
			return nil
		}
		l.mu.Lock()
		if c = l.chunks[ci].Load(); c == nil {
			c = new([chunkSize]atomic.Int64)
			l.chunks[ci].Store(c)
		}
		l.mu.Unlock()
	}
	return &c[seq&(chunkSize-1)]
}

// sent records the scheduled time (ns since start) before the record is
// handed to the producer, so a result can never arrive for an unknown slot.
func (l *ledger) sent(seq, scheduledNs int64) bool {
	s := l.slot(seq, true)
	if s == nil {
		return false
	}
	s.Store((scheduledNs & timeMask) + 1)
	return true
}

func (l *ledger) acked(seq int64) {
	if s := l.slot(seq, false); s != nil {
		s.Or(bitAcked)
	}
}

func (l *ledger) failed(seq int64) {
	if s := l.slot(seq, false); s != nil {
		s.Or(bitFailed)
	}
}

// receiveOutcome says what a result meant.
type receiveOutcome int

const (
	recvFirst     receiveOutcome = iota // the first result for a sent record
	recvDuplicate                       // a redelivery: counted, not timed again
	recvUnknown                         // an id this run never sent
)

// received marks seq's result and returns its scheduled time.
func (l *ledger) received(seq int64) (scheduledNs int64, out receiveOutcome) {
	s := l.slot(seq, false)
	if s == nil {
		return 0, recvUnknown
	}
	for {
		old := s.Load()
		if old == 0 {
			return 0, recvUnknown
		}
		if old&bitReceived != 0 {
			return 0, recvDuplicate
		}
		if s.CompareAndSwap(old, old|bitReceived) {
			return old&timeMask - 1, recvFirst
		}
	}
}

func (l *ledger) isReceived(seq int64) bool {
	s := l.slot(seq, false)
	return s != nil && s.Load()&bitReceived != 0
}
