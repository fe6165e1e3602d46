package worker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// backoff is exponential backoff with full jitter: attempt n (from 0) waits a
// random duration in [d/2, d) where d = min(base*2^n, max). Jitter keeps many
// workers from hammering a recovering TF Serving in lockstep.
type backoff struct {
	Base, Max time.Duration
}

func (b backoff) delay(attempt int) time.Duration {
	d := b.Base
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)))
}

// sleepCtx waits d or until ctx ends, reporting whether the full wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Breaker states, as shown in Stats.Breaker.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// breaker is a circuit breaker in front of TF Serving. After Threshold
// consecutive failed Predicts it opens: callers wait instead of calling, and
// the pool pauses fetching so the backlog stays in Kafka (visible as lag)
// rather than in memory. After Cooldown one caller is let through as a probe
// (half-open); its success closes the breaker, its failure re-opens it with a
// longer cooldown (capped at MaxCooldown).
type breaker struct {
	Threshold   int
	Cooldown    time.Duration
	MaxCooldown time.Duration
	// OnChange is called (outside the lock) on every state change.
	OnChange func(from, to string)

	mu       sync.Mutex
	state    string
	fails    int
	openedAt time.Time
	cool     time.Duration
	probing  bool
	wake     chan struct{} // closed when the state may have changed
	now      func() time.Time
}

func newBreaker(threshold int, cooldown, maxCooldown time.Duration) *breaker {
	return &breaker{Threshold: threshold, Cooldown: cooldown, MaxCooldown: maxCooldown,
		state: BreakerClosed, cool: cooldown, wake: make(chan struct{}), now: time.Now}
}

// State is closed, open or half-open.
func (b *breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// acquire blocks until the caller may call TF Serving. probe reports that the
// caller is the half-open probe and must report its outcome.
func (b *breaker) acquire(ctx context.Context) (probe bool, err error) {
	for {
		b.mu.Lock()
		switch b.state {
		case BreakerClosed:
			b.mu.Unlock()
			return false, nil
		case BreakerOpen:
			wait := b.cool - b.now().Sub(b.openedAt)
			if wait <= 0 {
				from := b.state
				b.state = BreakerHalfOpen
				b.probing = true
				b.signalLocked()
				b.mu.Unlock()
				b.changed(from, BreakerHalfOpen)
				return true, nil
			}
			wake := b.wake
			b.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-wake:
			case <-ctx.Done():
				t.Stop()
				return false, ctx.Err()
			}
			t.Stop()
		case BreakerHalfOpen:
			if !b.probing {
				b.probing = true
				b.mu.Unlock()
				return true, nil
			}
			wake := b.wake
			b.mu.Unlock()
			select {
			case <-wake:
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	}
}

// success reports a Predict that TF Serving answered.
func (b *breaker) success(probe bool) {
	b.mu.Lock()
	b.fails = 0
	if probe {
		b.probing = false
	}
	if b.state == BreakerClosed {
		b.mu.Unlock()
		return
	}
	from := b.state
	b.state = BreakerClosed
	b.cool = b.Cooldown
	b.signalLocked()
	b.mu.Unlock()
	b.changed(from, BreakerClosed)
}

// failure reports a Predict that failed for a reason worth retrying.
func (b *breaker) failure(probe bool) {
	b.mu.Lock()
	b.fails++
	from := b.state
	switch {
	case probe || b.state == BreakerHalfOpen:
		b.probing = false
		if b.state == BreakerHalfOpen {
			b.cool *= 2
			if b.cool > b.MaxCooldown {
				b.cool = b.MaxCooldown
			}
		}
		b.state = BreakerOpen
		b.openedAt = b.now()
	case b.state == BreakerClosed && b.fails >= b.Threshold:
		b.state = BreakerOpen
		b.openedAt = b.now()
	}
	to := b.state
	if from != to {
		b.signalLocked()
	}
	b.mu.Unlock()
	if from != to {
		b.changed(from, to)
	}
}

// release gives back a probe slot without an outcome (the caller was
// cancelled), so another caller can probe.
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.signalLocked()
	b.mu.Unlock()
}

func (b *breaker) signalLocked() {
	close(b.wake)
	b.wake = make(chan struct{})
}

func (b *breaker) changed(from, to string) {
	if b.OnChange != nil {
		b.OnChange(from, to)
	}
}
