package fleet

import (
	"encoding/json"
	"testing"
	"time"
)

// The fleet's readers parse records other processes wrote: none may crash
// or allocate without bound on any input, and whatever they accept must
// survive a round trip.

func FuzzHist(f *testing.F) {
	h := workerHist()
	for _, v := range []int64{1, 50, 900, 12000, 60_000_000} {
		_ = h.RecordValue(v)
	}
	good, _ := HistOf(h).MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 1, 100, 2, 1, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var x Hist
		if err := x.UnmarshalBinary(b); err != nil {
			return
		}
		back, err := x.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var y Hist
		if err := y.UnmarshalBinary(back); err != nil || y.Count() != x.Count() {
			t.Fatalf("round trip: %v, %d vs %d", err, y.Count(), x.Count())
		}
		_ = Merge(x, y).Quantile(99)
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	h := workerHist()
	_ = h.RecordValue(700)
	s := &Snapshot{Schema: 1, Instance: "web-1", Host: "web-1", PID: 42, Time: time.Unix(1e9, 0).UTC(), IntervalMs: 1000, Group: "g",
		Members: []Member{{ClientID: "inferops-web-1-w1", Partitions: []int32{0, 1}}}, Predict: HistOf(h),
		Versions: []VersionRow{{Version: 2, Rows: 5, Predict: HistOf(h)}}, DLQReasons: map[string]uint64{"bad_json": 1}}
	b, _ := json.Marshal(s)
	f.Add(b)
	f.Add([]byte(`{"schema":1,"instance":"a","time":"2026-01-01T00:00:00Z","e2e":"AQ=="}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSnapshot(out); err != nil {
			t.Fatalf("re-decoding an accepted snapshot: %v", err)
		}
		_ = ViewOf(s.Time, s.Group, nil, -1, []*Snapshot{s}, nil)
	})
}

func FuzzDecodeDesired(f *testing.F) {
	f.Add([]byte(`{"v":1,"group":"g","seq":3,"workers":9,"shares":{"a":2},"target":"label:stable","paused":true,"by":"x@y","at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":2,"compat":2,"group":"g","rollout":{}}`))
	r, _ := json.Marshal(&Desired{V: 2, Compat: 2, Group: "g", Seq: 4, Target: "1", Rollout: testRollout(RolloutCanary), By: "x@y", At: time.Unix(1e9, 0).UTC()})
	f.Add(r)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDesired(b)
		if err != nil {
			return
		}
		_ = d.Applicable()
		_ = d.Summary()
		a := Assign(d, []string{"a", "b", "c"}, "in", 12)
		if a.Total > 12 {
			t.Fatalf("assigned %d > 12 partitions", a.Total)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","source":"fleet","kind":"control","level":"info","message":"3/3 instances applied target 2 in 1.4 s"}`))
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","level":"loud","message":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ev, err := DecodeEvent(b); err == nil && ev.Message == "" {
			t.Fatal("accepted an event with no message")
		}
	})
}

func FuzzDecodeRoster(f *testing.F) {
	f.Add([]byte(`{"instances":["a","b","a"]}`))
	f.Add([]byte(`{"instances":["../x",""]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		names, err := decodeRoster(b)
		if err != nil {
			return
		}
		for i := 1; i < len(names); i++ {
			if names[i] <= names[i-1] {
				t.Fatalf("roster not sorted and unique: %q", names)
			}
		}
	})
}
