package rollout

import (
	"fmt"
	"time"
)

// WarmupResult is what the warm-up found: the candidate's first-request
// latency on each TF Serving host and whether it is warm.
type WarmupResult struct {
	Records int           `json:"records"` // input records sent (per host)
	Hosts   []WarmupHost  `json:"hosts"`
	Warm    bool          `json:"warm"`
	Took    time.Duration `json:"took_ns"`
	Note    string        `json:"note,omitempty"`
}

// WarmupHost is one host's warm-up.
type WarmupHost struct {
	Addr    string  `json:"addr"`
	FirstMs float64 `json:"first_ms"` // the first request's latency
	P50Ms   float64 `json:"p50_ms"`   // of the last requests, once warm
	MaxMs   float64 `json:"max_ms"`   // of the last requests
	Errors  int     `json:"errors"`
	Warm    bool    `json:"warm"`
}

func (w *WarmupResult) String() string {
	if w == nil {
		return "-"
	}
	s := fmt.Sprintf("%d records per host in %.1f s", w.Records, w.Took.Seconds())
	for _, h := range w.Hosts {
		state := "warm"
		if !h.Warm {
			state = "NOT warm"
		}
		s += fmt.Sprintf("; %s first %.1f ms, then p50 %.1f ms max %.1f ms (%s", h.Addr, h.FirstMs, h.P50Ms, h.MaxMs, state)
		if h.Errors > 0 {
			s += fmt.Sprintf(", %d errors", h.Errors)
		}
		s += ")"
	}
	if w.Note != "" {
		s += "; " + w.Note
	}
	return s
}
