package fleet_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/fleet/fleettest"
)

// TestViewOfFixture: the states a View derives (lost after 3 intervals,
// pinned, pending), its totals over the live instances only, and the
// merged latency being the exact merge of the live windows.
func TestViewOfFixture(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v := fleettest.View(now, 8, 4)
	states := map[string]string{}
	for _, i := range v.Instances {
		states[i.Instance] = i.State + "/" + i.ControlState
	}
	want := map[string]string{"web-03": "live/pending", "web-07": "live/pinned", "web-08": "lost/applied", "web-01": "live/applied"}
	for k, w := range want {
		if states[k] != w {
			t.Errorf("%s: %s, want %s (all %v)", k, states[k], w, states)
		}
	}
	if v.Totals.Live != 7 || v.Totals.Lost != 1 || v.Totals.Workers != 28 || v.Totals.Following != 6 || v.Totals.Applied != 5 {
		t.Errorf("totals %+v", v.Totals)
	}
	var live []fleet.Hist
	var rows int64
	for _, i := range v.Instances {
		if i.Live() {
			live = append(live, i.EndToEnd)
			rows += i.EndToEnd.Count()
		}
	}
	if m := fleet.Merge(live...); m.Quantile(99) != v.EndToEnd.Quantile(99) || v.EndToEnd.Count() != rows {
		t.Errorf("merged e2e p99 %v count %d, want %v %d", v.EndToEnd.Quantile(99), v.EndToEnd.Count(), m.Quantile(99), rows)
	}
	if len(v.Versions) != 2 || v.Versions[0].Version != 1 || v.Versions[0].Instances != 2 || v.Versions[1].Instances != 6 {
		t.Errorf("versions %+v", v.Versions)
	}
	var b bytes.Buffer
	fleet.PrintStatus(&b, v.Status())
	out := b.String()
	for _, s := range []string{"desired: workers 32, target 2, running (seq 7 by alice@ops-1", "instances 7 live, 1 lost", "control 5/6 applied", "version 1:", "web-08    lost", "5/6 instances applied target 2"} {
		if !strings.Contains(out, s) {
			t.Errorf("status lacks %q:\n%s", s, out)
		}
	}
	t.Logf("\n%s", out)
}

// TestSnapshotSize: a realistic snapshot of 8 members with their windows,
// as the agent sends it (before the producer's zstd).
func TestSnapshotSize(t *testing.T) {
	now := time.Now()
	for _, s := range fleettest.Snapshots(now, 3, 8) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(s.Predict)
		e, _ := json.Marshal(s.EndToEnd)
		t.Logf("%s: %d bytes (predict %d samples in %d bytes, e2e %d in %d)", s.Instance, len(b), s.Predict.Count(), len(p), s.EndToEnd.Count(), len(e))
	}
}
