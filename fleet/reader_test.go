package fleet

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline"
)

// TestReaderStates feeds a reader records as the fleet topic would hold
// them, with no broker: two processes under one name are a duplicate while
// both are heard, a silent instance is lost after three of its intervals,
// a tombstone removes it, an instance gone longer than the topic's
// retention leaves the view, events are kept in time order and a record
// that is not a snapshot is counted, never shown.
func TestReaderStates(t *testing.T) {
	r := &Reader{cfg: ReaderConfig{Group: "g"}, insts: map[string]*entry{}, desired: map[string]desiredAt{}, updated: make(chan struct{})}
	t0 := time.Now().Add(-2 * time.Hour)
	snap := func(inst, host string, pid int, at time.Time) record {
		group := "g"
		if inst == "other-group" {
			group = "g2"
		}
		b, _ := json.Marshal(&Snapshot{Schema: 1, Instance: inst, Host: host, PID: pid, Started: t0, Time: at, IntervalMs: 1000, Group: group, Control: Control{Mode: ModeFollow, Offset: -1, Share: -1}})
		return record{Key: []byte(inst), Value: b, Time: at}
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	r.onFleet(snap("a", "h1", 1, at(0)))
	r.onFleet(snap("a", "h2", 2, at(500*time.Millisecond)))
	r.onFleet(snap("b", "h3", 3, at(time.Second)))
	r.onFleet(snap("other-group", "h4", 4, at(time.Second)))
	v := r.viewAt(at(1500 * time.Millisecond))
	if i, _ := v.Instance("a"); i.State != StateDuplicate || len(i.Others) != 1 || i.Others[0].Host != "h1" {
		t.Errorf("a: %s %+v, want a duplicate naming h1", i.State, i.Others)
	}
	if _, ok := v.Instance("other-group"); ok {
		t.Error("an instance of another group is in the view")
	}
	// h1 stops; h2 carries on: a is live again once h1 is 3 intervals old.
	for s := 2; s <= 5; s++ {
		r.onFleet(snap("a", "h2", 2, at(time.Duration(s)*time.Second)))
	}
	v = r.viewAt(at(5 * time.Second))
	if i, _ := v.Instance("a"); i.State != StateLive {
		t.Errorf("a: %s, want live with h1 gone", i.State)
	}
	if i, _ := v.Instance("b"); i.State != StateLost || v.Totals.Live != 1 || v.Totals.Lost != 1 {
		t.Errorf("b silent for 4 s: %s (totals %+v), want lost", i.State, v.Totals)
	}
	r.onFleet(record{Key: []byte("a"), Time: at(6 * time.Second)}) // tombstone
	if _, ok := r.viewAt(at(6 * time.Second)).Instance("a"); ok {
		t.Error("a is still in the view after its tombstone")
	}
	if _, ok := r.viewAt(at(2 * time.Hour)).Instance("b"); ok {
		t.Error("b, lost for 2 h, is still in the view")
	}
	ev := func(msg string, d time.Duration) record {
		b, _ := json.Marshal(pipeline.Event{Time: at(d), Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Message: msg})
		return record{Key: []byte(eventPrefix + "x/" + msg), Value: b, Time: at(d)}
	}
	r.onFleet(ev("second", 2*time.Second))
	r.onFleet(ev("first", time.Second))
	r.onFleet(record{Key: []byte("c"), Value: []byte(`{"schema":1,"instance":"not-c","time":"2026-01-01T00:00:00Z"}`)})
	r.onFleet(record{Key: []byte("d"), Value: []byte(`not json`)})
	v = r.viewAt(at(7 * time.Second))
	if len(v.Events) != 2 || v.Events[0].Message != "first" || v.Bad != 2 {
		t.Errorf("events %+v, bad %d; want first then second, 2 bad records", v.Events, v.Bad)
	}
}
