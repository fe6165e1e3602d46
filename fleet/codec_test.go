package fleet

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// workerGeometry is the worker's window: 1 us to 1 min, 2 digits.
func workerHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)
}

func TestHistRoundTripAndExactMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := workerHist()
	var parts []Hist
	for i := 0; i < 5; i++ {
		h := workerHist()
		for j := 0; j < 2000+i*700; j++ {
			v := int64(rng.ExpFloat64()*3000) + 50 // ~3 ms, long tail
			if j%97 == 0 {
				v *= 40
			}
			_ = h.RecordValue(v)
			_ = all.RecordValue(v)
		}
		b, err := json.Marshal(HistOf(h))
		if err != nil {
			t.Fatal(err)
		}
		var back Hist
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !back.Histogram().Equals(h) {
			t.Fatalf("round trip changed the histogram")
		}
		t.Logf("instance %d: %d samples, %d JSON bytes", i, h.TotalCount(), len(b))
		parts = append(parts, back)
	}
	m := Merge(parts...)
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		want := time.Duration(all.ValueAtQuantile(q)) * time.Microsecond
		if got := m.Quantile(q); got != want {
			t.Errorf("merged q%v = %v, the union of the samples says %v", q, got, want)
		}
	}
	if m.Count() != all.TotalCount() {
		t.Errorf("merged count %d, want %d", m.Count(), all.TotalCount())
	}
	if Merge().Count() != 0 || Merge(Hist{}, Hist{}).Quantile(99) != 0 {
		t.Error("an empty merge is not empty")
	}
	var empty Hist
	if b, _ := json.Marshal(empty); string(b) != `""` {
		t.Errorf("empty hist marshals as %s", b)
	}
}

func TestHistRefusesHostileBytes(t *testing.T) {
	good, _ := HistOf(func() *hdrhistogram.Histogram { h := workerHist(); _ = h.RecordValue(10); return h }()).MarshalBinary()
	for name, b := range map[string][]byte{
		"format":    append([]byte{9}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte{}, good...), 0),
		"huge hi":   {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 0},
		"sig 5":     {1, 1, 100, 5, 0},
		"index":     {1, 1, 100, 2, 1, 0xff, 0xff, 0x03, 1, 1},
		"zero":      {1, 1, 100, 2, 1, 0, 1, 0},
		"empty run": {1, 1, 100, 2, 1, 0, 0},
		"touching":  {1, 1, 100, 2, 2, 0, 1, 1, 0, 1, 1},
	} {
		var h Hist
		if err := h.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAssign(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name   string
		d      *Desired
		roster []string
		parts  int
		want   map[string]int
		note   string
	}{
		{"no total", &Desired{}, []string{"a"}, 12, nil, ""},
		{"even", &Desired{Workers: n(9)}, []string{"c", "a", "b"}, 12, map[string]int{"a": 3, "b": 3, "c": 3}, ""},
		{"first get the rest", &Desired{Workers: n(5)}, []string{"b", "a", "c"}, 12, map[string]int{"a": 2, "b": 2, "c": 1}, ""},
		{"fewer than instances", &Desired{Workers: n(1)}, []string{"b", "a"}, 12, map[string]int{"a": 1, "b": 0}, ""},
		{"clamped", &Desired{Workers: n(20)}, []string{"a", "b"}, 12, map[string]int{"a": 6, "b": 6}, "20 workers asked, but in has 12 partitions: running 12"},
		{"share", &Desired{Workers: n(9), Shares: map[string]int{"b": 5}}, []string{"a", "b", "c"}, 12, map[string]int{"a": 2, "b": 5, "c": 2}, ""},
		{"share of a lost instance is ignored", &Desired{Workers: n(4), Shares: map[string]int{"z": 3}}, []string{"a", "b"}, 12, map[string]int{"a": 2, "b": 2}, ""},
		{"shares only", &Desired{Workers: n(6), Shares: map[string]int{"a": 2}}, []string{"a"}, 12, map[string]int{"a": 2}, "4 of 6 workers not placed: every live instance has a fixed share"},
		{"nobody", &Desired{Workers: n(3)}, nil, 12, map[string]int{}, "no live instance follows control"},
		{"duplicates in roster", &Desired{Workers: n(4)}, []string{"a", "a", "b"}, 0, map[string]int{"a": 2, "b": 2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Assign(tt.d, tt.roster, "in", tt.parts)
			if len(got.Workers) != len(tt.want) {
				t.Fatalf("got %v, want %v", got.Workers, tt.want)
			}
			for k, v := range tt.want {
				if got.Workers[k] != v {
					t.Errorf("%s: %d, want %d (all %v)", k, got.Workers[k], v, got.Workers)
				}
			}
			if got.Note != tt.note {
				t.Errorf("note %q, want %q", got.Note, tt.note)
			}
		})
	}
}

func TestDesiredCompatibility(t *testing.T) {
	// A newer writer's record: unknown fields are ignored, and Compat says
	// whether an old reader may apply it.
	newer := `{"v":3,"compat":1,"group":"g","seq":4,"workers":6,"target":"2","by":"a@b","at":"2026-01-01T00:00:00Z","mirror":{"to":3,"share":0.1}}`
	d, err := DecodeDesired([]byte(newer))
	if err != nil {
		t.Fatal(err)
	}
	if d.Applicable() != nil || *d.Workers != 6 || d.Target != "2" {
		t.Errorf("a compatible newer record: %+v, %v", d, d.Applicable())
	}
	d, err = DecodeDesired([]byte(strings.Replace(newer, `"compat":1`, `"compat":3`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Applicable(); err == nil || !strings.Contains(err.Error(), "--control=ignore") {
		t.Errorf("an incompatible record must not be applied: %v", err)
	}
	for _, bad := range []string{`{}`, `{"v":1}`, `{"v":1,"group":"g","workers":-1}`, `{"v":1,"group":"g","target":"v0"}`, `{"v":1,"group":"g","shares":{"a/b":1}}`, `[`} {
		if _, err := DecodeDesired([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestDecodeSnapshotRefuses(t *testing.T) {
	for _, bad := range []string{`{}`, `{"schema":1,"instance":"a b","time":"2026-01-01T00:00:00Z"}`, `{"schema":1,"instance":"a"}`, `{"schema":1,"instance":"a","time":"2026-01-01T00:00:00Z","interval_ms":-5}`, `{"schema":1,"instance":"a","time":"2026-01-01T00:00:00Z","predict":"!!"}`} {
		if _, err := DecodeSnapshot([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
