package perf

import (
	"bytes"
	"strconv"
	"testing"
)

// FuzzResultID: perf reads results from the output topic, where anything
// may have been written. A result is counted only when its id carries this
// run's prefix and a sequence number that the fast path and the JSON path
// agree on.
func FuzzResultID(f *testing.F) {
	for _, s := range []string{
		`{"id":"perf-r1-42","model":"my_model","model_version":1,"predictions":[0.5]}`,
		`{"model":"m","id":"perf-r1-7"}`, `{"id":"perf-r1-"}`, `{"id":"perf-r1-99999999999999999999"}`,
		`{"id":"perf-r2-1"}`, `{"id":42}`, `not json`, ``,
	} {
		f.Add([]byte(s))
	}
	prefix := []byte("perf-r1-")
	f.Fuzz(func(t *testing.T, v []byte) {
		seq, ok := resultID(v, prefix)
		if !ok {
			return
		}
		if seq < 0 {
			t.Fatalf("negative sequence %d from %q", seq, v)
		}
		// Whatever was accepted, the canonical form reads back the same.
		canon := append(append([]byte(`{"id":"`), prefix...), strconv.FormatInt(seq, 10)...)
		canon = append(canon, `"}`...)
		if s2, ok2 := resultID(canon, prefix); !ok2 || s2 != seq {
			t.Fatalf("%q -> %d, canonical %q -> %d %v", v, seq, canon, s2, ok2)
		}
	})
}

// FuzzReadHistory: the perf history is a file in the state dir that a run
// killed mid-write, a full disk or a hand edit can leave damaged; a bad line
// is skipped, never fatal and never a panic.
func FuzzReadHistory(f *testing.F) {
	f.Add([]byte(`{"scenario":"small","run_id":"r1"}` + "\n" + `{"scenario":"medium"` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		runs, skipped, err := readHistory(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, r := range runs {
			if r.Scenario == "" {
				t.Fatalf("kept a run without a scenario")
			}
		}
		if lines := bytes.Count(data, []byte("\n")) + 1; len(runs)+skipped > lines {
			t.Fatalf("%d runs + %d skipped from %d lines", len(runs), skipped, lines)
		}
	})
}
