package cluster

import (
	"encoding/json"
	"testing"
	"time"
)

// win builds a window of observations one second apart from (offset, lag)
// pairs.
func win(pairs ...int64) []commitEntry {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var w []commitEntry
	for i := 0; i+1 < len(pairs); i += 2 {
		w = append(w, commitEntry{Time: t0.Add(time.Duration(i/2) * time.Second), Offset: pairs[i], Lag: pairs[i+1]})
	}
	return w
}

func TestEvaluatePartition(t *testing.T) {
	tests := []struct {
		name    string
		window  []commitEntry
		owned   bool
		allowed int64
		want    Status
	}{
		{"empty window", nil, true, 0, StatusOK},
		{"too few entries", win(10, 5, 10, 6), true, 0, StatusOK},
		{"no lag now", win(10, 5, 12, 3, 15, 0, 15, 0, 15, 0), true, 0, StatusOK},
		{"lag within allowed", win(10, 5, 11, 5, 12, 5, 13, 5, 14, 5), true, 5, StatusOK},
		{"stopped: unchanged and orphaned", win(10, 5, 10, 6, 10, 7, 10, 8, 10, 9), false, 0, StatusStop},
		{"stop beats caught-up-earlier", win(10, 0, 10, 6, 10, 7, 10, 8, 10, 9), false, 0, StatusStop},
		{"stall: unchanged but owned", win(10, 5, 10, 6, 10, 7, 10, 8, 10, 9), true, 0, StatusStall},
		{"owned, unchanged, was caught up: OK", win(10, 0, 10, 6, 10, 7, 10, 8, 10, 9), true, 0, StatusOK},
		{"rewind", win(10, 5, 12, 5, 14, 5, 8, 11, 9, 12), true, 0, StatusRewind},
		{"rewind then recovered", win(10, 5, 8, 7, 12, 5, 14, 5, 16, 5), true, 0, StatusOK},
		{"rewind beats caught-up", win(10, 0, 12, 5, 14, 5, 8, 11, 9, 12), true, 0, StatusRewind},
		{"caught up in the window", win(10, 0, 12, 3, 14, 5, 16, 7, 18, 9), true, 0, StatusOK},
		{"warn: lag never decreased", win(10, 5, 12, 6, 14, 6, 16, 8, 18, 9), true, 0, StatusWarn},
		{"warn: constant lag", win(10, 5, 12, 5, 14, 5, 16, 5, 18, 5), true, 0, StatusWarn},
		{"ok: lag went down once", win(10, 5, 12, 6, 14, 4, 16, 8, 18, 9), true, 0, StatusOK},
		{"orphaned but moving: falls to other rules", win(10, 5, 12, 6, 14, 7, 16, 8, 18, 9), false, 0, StatusWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evaluatePartition(tt.window, tt.owned, tt.allowed, 5); got != tt.want {
				t.Errorf("evaluatePartition = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGroupStatus(t *testing.T) {
	tests := []struct {
		parts []Status
		want  Status
	}{
		{nil, StatusOK},
		{[]Status{StatusOK, StatusOK}, StatusOK},
		{[]Status{StatusOK, StatusWarn}, StatusWarn},
		{[]Status{StatusWarn, StatusStall}, StatusErr},
		{[]Status{StatusStop, StatusOK}, StatusErr},
		{[]Status{StatusOK, StatusRewind}, StatusErr},
	}
	for _, tt := range tests {
		var ps []PartitionLag
		for _, s := range tt.parts {
			ps = append(ps, PartitionLag{Status: s})
		}
		if got := groupStatus(ps); got != tt.want {
			t.Errorf("groupStatus(%v) = %v, want %v", tt.parts, got, tt.want)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	for s := StatusOK; s <= StatusErr; s++ {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != `"`+s.String()+`"` {
			t.Errorf("Marshal(%v) = %s", s, b)
		}
		var back Status
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("Unmarshal(%s) = %v, %v", b, back, err)
		}
	}
	if Status(42).String() != "Status(42)" {
		t.Errorf("out of range String() = %q", Status(42).String())
	}
	var s Status
	if err := json.Unmarshal([]byte(`"NOPE"`), &s); err == nil {
		t.Error("unmarshal of an unknown name succeeded")
	}
}

func TestPartitionLagJSON(t *testing.T) {
	b, err := json.Marshal(PartitionLag{Partition: 3, Leader: 1, LogStart: 0, HighWatermark: 9, Committed: -1, Lag: -1, LagSeconds: -1, Member: "w"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"committed", "lag", "lag_seconds"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if m["partition"] != 3.0 || m["high_watermark"] != 9.0 || m["member"] != "w" || m["status"] != "OK" {
		t.Errorf("json = %s", b)
	}
	b, _ = json.Marshal(PartitionLag{Committed: 4, Lag: 5, LagSeconds: 1.5})
	m = nil
	_ = json.Unmarshal(b, &m)
	if m["committed"] != 4.0 || m["lag"] != 5.0 || m["lag_seconds"] != 1.5 {
		t.Errorf("json = %s", b)
	}
}
