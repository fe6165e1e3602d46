package live

import (
	"sort"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/tui"
)

// adviceWindow is how many Kafka snapshots (one per refresh) the advice
// rules see: enough for a lag trend, short enough to follow a change.
const adviceWindow = 30

// adviceState is what the advice rules need across refreshes.
type adviceState struct {
	window  []*cluster.Snapshot
	p99     []time.Duration
	active  map[string]int // rules announced -> evaluations they have been silent
	lastDLQ uint64
	lastErr map[string]uint64
	lastAt  time.Time
	// The DLQ rate is measured over dlqSpan, not per refresh: dead letters
	// arrive in bursts and a per-second rate would flap the advice.
	dlqRate    float64
	dlqReasons []doctor.ReasonCount
	// last is the latest evaluation's advice, for the triage report.
	last []doctor.Advice
}

const dlqSpan = 10 * time.Second

// adviseLocked runs doctor's advice rules over the latest evidence and logs
// each rule as an event when it starts firing (and once when it clears),
// so the fix for a symptom appears next to the symptom.
func (a *Adapter) adviseLocked(now time.Time) {
	as := &a.advice
	e := doctor.KafkaEvidence(as.window, a.cfg.Brokers)
	e.TFServingAddr = a.cfg.TFServing
	if a.cfg.Pool != nil {
		st := a.pool.stats
		e.Workers = st.Workers
		e.PredictP99 = as.p99
		e.AvgBatchSize, e.MaxBatch = st.AvgBatch, 64
		e.PredictLatency = st.Predict.P50
		if st.AvgBatch > 0 {
			e.PredictQPS = st.QPS / st.AvgBatch
		}
		e.RecordsPerSec = st.QPS
		e.BreakerState = st.Breaker
		if as.lastAt.IsZero() || now.Sub(as.lastAt) >= dlqSpan {
			if dt := now.Sub(as.lastAt).Seconds(); !as.lastAt.IsZero() && st.DLQ >= as.lastDLQ {
				as.dlqRate = float64(st.DLQ-as.lastDLQ) / dt
				as.dlqReasons = as.dlqReasons[:0]
				for k, v := range st.Errors {
					if d := int64(v) - int64(as.lastErr[k]); d > 0 && k != "predict" && k != "produce" && k != "consume" {
						as.dlqReasons = append(as.dlqReasons, doctor.ReasonCount{Reason: k, Count: d})
					}
				}
				sort.Slice(as.dlqReasons, func(i, j int) bool { return as.dlqReasons[i].Count > as.dlqReasons[j].Count })
			}
			as.lastDLQ, as.lastAt = st.DLQ, now
			as.lastErr = make(map[string]uint64, len(st.Errors))
			for k, v := range st.Errors {
				as.lastErr[k] = v
			}
		}
		e.DLQRate = as.dlqRate
		e.DLQTopReasons = append([]doctor.ReasonCount(nil), as.dlqReasons...)
	}
	// A rule is announced when it starts firing and cleared only after
	// clearAfter silent evaluations, so a noisy trend does not flap.
	if as.active == nil {
		as.active = map[string]int{}
	}
	firing := map[string]bool{}
	as.last = doctor.Advise(e)
	for _, ad := range as.last {
		firing[ad.Rule] = true
		if _, ok := as.active[ad.Rule]; ok {
			as.active[ad.Rule] = 0
			continue
		}
		as.active[ad.Rule] = 0
		lv := tui.Info
		switch ad.Severity {
		case doctor.SeverityWarn:
			lv = tui.Warn
		case doctor.SeverityCritical:
			lv = tui.Error
		}
		a.addEventLocked(tui.Event{T: now, Kind: "advice", Level: lv, Text: ad.Title + " (" + ad.Evidence + "): " + ad.Fix})
	}
	for r, quiet := range as.active {
		if firing[r] {
			continue
		}
		if quiet+1 >= clearAfter {
			delete(as.active, r)
			a.addEventLocked(tui.Event{T: now, Kind: "advice", Level: tui.Info, Text: r + " no longer applies"})
			continue
		}
		as.active[r] = quiet + 1
	}
}

const clearAfter = 10
