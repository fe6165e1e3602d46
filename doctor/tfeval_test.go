package doctor

import (
	"strings"
	"testing"
	"time"
)

func healthyTF() TFFacts {
	return TFFacts{Addr: "10.0.0.5:8500", Model: "my_model",
		Versions: []VersionState{{Version: 1, State: "AVAILABLE"}, {Version: 2, State: "AVAILABLE"}},
		Labels:   map[string]int64{"stable": 1, "canary": 2},
		ProbeN:   50, P50: 2 * time.Millisecond, P99: 6 * time.Millisecond}
}

func TestJudgeTF(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*TFFacts)
		id     string
		want   Status
		seen   string
		fix    string
	}{
		{"healthy model", func(*TFFacts) {}, "tfserving.model", Pass, "AVAILABLE: version 1, 2", ""},
		{"labels listed sorted", func(*TFFacts) {}, "tfserving.versions", Info, "labels canary=2, stable=1", ""},
		{"probe within SLO", func(*TFFacts) {}, "tfserving.predict", Pass, "p99 6ms over 50 calls", ""},
		{"model not found", func(f *TFFacts) { f.StatusErr = "NOT_FOUND: Could not find any versions of model my_model" }, "tfserving.model", Fail, "NOT_FOUND", "--model"},
		{"model not found skips the probe", func(f *TFFacts) { f.StatusErr = "NOT_FOUND" }, "tfserving.predict", Skip, "not available", ""},
		{"still loading", func(f *TFFacts) { f.Versions = []VersionState{{Version: 3, State: "LOADING"}} }, "tfserving.model", Fail, "3 LOADING", "server log"},
		{"no versions at all", func(f *TFFacts) { f.Versions = nil }, "tfserving.model", Fail, "none reported", ""},
		{"failed load of a new version", func(f *TFFacts) {
			f.Versions = append(f.Versions, VersionState{Version: 3, State: "END", Error: "NOT_FOUND: saved_model.pb missing"})
		}, "tfserving.versions", Warn, "3 END (NOT_FOUND", "/models/my_model/3"},
		{"no labels", func(f *TFFacts) { f.Labels = nil }, "tfserving.versions", Info, "no labels", ""},
		{"slow model", func(f *TFFacts) { f.P99 = 120 * time.Millisecond }, "tfserving.predict", Warn, "p99 120ms", "GPU"},
		{"very slow model", func(f *TFFacts) { f.P99 = 900 * time.Millisecond }, "tfserving.predict", Fail, "p99 900ms", "4x the SLO"},
		{"120 ms within a 200 ms SLO", func(f *TFFacts) { f.P99 = 120 * time.Millisecond; f.SLO = 200 * time.Millisecond }, "tfserving.predict", Pass, "p99 120ms", ""},
		{"120 ms over a 100 ms SLO", func(f *TFFacts) { f.P99 = 120 * time.Millisecond; f.SLO = 100 * time.Millisecond }, "tfserving.predict", Warn, "p99 120ms", "GPU"},
		{"probe errors", func(f *TFFacts) { f.ProbeErrors = 50; f.ProbeErr = "UNAVAILABLE: queue full" }, "tfserving.predict", Fail, "50 failed: UNAVAILABLE", "batching queue"},
		{"a stand-in says so", func(f *TFFacts) { f.StandIn, f.Signature = true, "x DT_FLOAT [-1] -> y DT_FLOAT [-1]" }, "tfserving.standin", Warn,
			"my_model is a stand-in (x DT_FLOAT [-1] -> y DT_FLOAT [-1])", "for production point --tfserving"},
		{"no signature", func(f *TFFacts) { f.SignatureErr = "no serving_default signature"; f.ProbeN = 0 }, "tfserving.predict", Warn, "not probed", "saved_model_cli"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyTF()
			tc.mutate(&f)
			c := find(t, JudgeTF(f), tc.id)
			if c.Status != tc.want || !strings.Contains(c.Seen, tc.seen) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("%s: got %s seen %q fix %q\nwant %s seen ~%q fix ~%q", tc.id, c.Status, c.Seen, c.Fix, tc.want, tc.seen, tc.fix)
			}
			if c.Section != SectionTFServing {
				t.Errorf("section %q", c.Section)
			}
		})
	}
}
