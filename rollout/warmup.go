package rollout

import (
	"fmt"
	"time"
)

// WarmupResult is what the warm-up found. During the warm-up every
// instance mirrors the records it is serving now (recent real records
// from the input topic) to the candidate, through the shadow machinery
// (bounded in flight, never written), so every TF Serving host the
// instances balance over sees the candidate's first requests before any
// result depends on it.
type WarmupResult struct {
	Records int     `json:"records"`  // mirrored records answered in the window
	FirstMs float64 `json:"first_ms"` // the slowest instance's first request
	P50Ms   float64 `json:"p50_ms"`   // of the window, once warm
	P99Ms   float64 `json:"p99_ms"`
	LimitMs float64 `json:"limit_ms"` // p99 under which it counts as warm
	Errors  uint64  `json:"errors"`
	Warm    bool    `json:"warm"`
	Seconds float64 `json:"seconds"` // since the warm-up began
}

func (w *WarmupResult) String() string {
	if w == nil {
		return "-"
	}
	state := "warming"
	if w.Warm {
		state = "warm"
	}
	s := fmt.Sprintf("%s after %.0f s: first request %.1f ms, then p50 %.1f ms p99 %.1f ms over %d records (warm under %.1f ms)",
		state, w.Seconds, w.FirstMs, w.P50Ms, w.P99Ms, w.Records, w.LimitMs)
	if w.Errors > 0 {
		s += fmt.Sprintf(", %d failed", w.Errors)
	}
	return s
}

// warmupTimeout is how long a warm-up may take before the rollout is
// rolled back: the hold, but at least a minute.
func warmupTimeout(hold time.Duration) time.Duration { return max(hold, time.Minute) }
