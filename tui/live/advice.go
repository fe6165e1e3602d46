package live

import (
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/pipeline"
)

// adviceWindow is how many Kafka snapshots (one per refresh) the advice
// rules see: enough for a lag trend, short enough to follow a change.
const adviceWindow = 30

// adviceState is what the advice rules need across refreshes: the recent
// Kafka snapshots and worker stats, oldest first, and which rules fired.
type adviceState struct {
	window  []*cluster.Snapshot
	workers []worker.Stats
	active  map[string]int // rules announced -> evaluations they have been silent
	// last is the latest evaluation's advice, for the triage report.
	last []doctor.Advice
}

// adviseLocked runs doctor's advice rules over the latest evidence and logs
// each rule as an event when it starts firing (and once when it clears),
// so the fix for a symptom appears next to the symptom.
func (a *Adapter) adviseLocked(now time.Time) {
	as := &a.advice
	e := doctor.KafkaEvidence(as.window, a.cfg.Brokers)
	e.TFServingAddr = a.cfg.TFServing
	if a.cfg.Pool != nil {
		e = doctor.MergeEvidence(e, doctor.WorkerEvidence(as.workers, a.cfg.Pool.Config().MaxBatch))
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
		lv := pipeline.Info
		switch ad.Severity {
		case doctor.SeverityWarn:
			lv = pipeline.Warn
		case doctor.SeverityCritical:
			lv = pipeline.Error
		}
		a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceAdvice, Kind: pipeline.KindAdvice, Level: lv, Message: ad.Title + " (" + ad.Evidence + "): " + ad.Fix})
	}
	for r, quiet := range as.active {
		if firing[r] {
			continue
		}
		if quiet+1 >= clearAfter {
			delete(as.active, r)
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceAdvice, Kind: pipeline.KindAdvice, Level: pipeline.Info, Message: r + " no longer applies"})
			continue
		}
		as.active[r] = quiet + 1
	}
}

const clearAfter = 10
