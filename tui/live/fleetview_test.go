package live

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/fleet/fleettest"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// fleetAdapter is an adapter that takes fleet Views by hand (no Kafka).
func fleetAdapter() *Adapter {
	cfg := Config{Model: pipeline.DefaultModel, Group: fleettest.Group, Instance: "web-02"}
	cfg.SetDefaults()
	a := &Adapter{cfg: cfg}
	a.d.Latency.SLO = cfg.SLO
	return a
}

// advanced is snaps one second later, each live instance having served
// 100*(i+1) more rows of its first version.
func advanced(snaps []*fleet.Snapshot, by time.Duration, lost string) []*fleet.Snapshot {
	out := make([]*fleet.Snapshot, len(snaps))
	for i, s := range snaps {
		c := *s
		if c.Instance != lost {
			c.Time = c.Time.Add(by)
			c.Versions = append([]fleet.VersionRow(nil), s.Versions...)
			c.Versions[0].Rows += uint64(100 * (i + 1))
		}
		out[i] = &c
	}
	return out
}

// TestFleetViewIntoData: a fleet View becomes the console's data: every
// instance with its state and control, the header's totals, the merged
// latency (the View's own merge, exactly), per-version rates from the
// instances' row counters, the events of an instance going lost, the
// group members no instance claims, and no second copy of an event this
// console published itself.
func TestFleetViewIntoData(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 4, 5, 0, time.UTC)
	const n, members = 6, 2
	snaps := fleettest.Snapshots(now, n, members)
	lost := snaps[n-1].Instance // silent since now-8s
	a := fleetAdapter()
	a.last = &cluster.Snapshot{Members: []cluster.Member{
		{MemberID: "m1", ClientID: snaps[0].Members[0].ClientID},
		{MemberID: "kcat-1", ClientID: "kcat-debug", Host: "/10.0.0.99", Partitions: []int32{3}},
	}}
	d := fleettest.Desired(now, n*members)

	// 6 s earlier every instance was live; now the last is lost.
	a.applyFleetLocked(fleet.ViewOf(now.Add(-6*time.Second), fleettest.Group, d, 6, snaps, nil))
	a.mineLocked(pipeline.Event{Time: now, Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Message: "alice@ops-1: target 2 (seq 7)"})
	v := fleet.ViewOf(now, fleettest.Group, d, 6, snaps, []pipeline.Event{
		{Time: now, Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Message: "alice@ops-1: target 2 (seq 7)"},
		{Time: now, Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Message: "bob@ops-2: pause (seq 8)"},
	})
	a.applyFleetLocked(v)
	later := fleet.ViewOf(now.Add(time.Second), fleettest.Group, d, 6, advanced(snaps, time.Second, lost), v.Events)
	a.applyFleetLocked(later)
	got := a.d

	f := got.Fleet
	if !f.Known || len(f.Instances) != n || f.Live != later.Totals.Live || f.Lost != 1 || f.Workers != later.Totals.Workers || f.Self != "web-02" {
		t.Fatalf("fleet %+v, want %d instances, %d live, 1 lost, %d workers", f, n, later.Totals.Live, later.Totals.Workers)
	}
	if f.DesiredWorkers != n*members || f.Seq != 7 || !strings.Contains(f.Desired, "workers 12, target 2") || f.Applied != later.Totals.Applied || f.Following != later.Totals.Following {
		t.Errorf("desired %q seq %d total %d applied %d/%d", f.Desired, f.Seq, f.DesiredWorkers, f.Applied, f.Following)
	}
	byName := map[string]tui.Instance{}
	for _, in := range f.Instances {
		byName[in.Name] = in
	}
	if in := byName[lost]; in.State != fleet.StateLost || in.Age < 8*time.Second {
		t.Errorf("%s: %+v, want lost for 8 s", lost, in)
	}
	if in := byName[snaps[n-2].Instance]; in.Control != fleet.ControlPinned || in.Serving != "1" {
		t.Errorf("pinned instance: %+v", in)
	}
	if in := byName["web-02"]; in.Serving != "1,2" || len(in.Members) != members || in.Members[0].ClientID != "inferops-web-02-w1" || in.E2EP99 == 0 {
		t.Errorf("mid-switch instance: %+v", in)
	}
	if len(f.Others) != 1 || f.Others[0].ClientID != "kcat-debug" {
		t.Errorf("others %+v, want the one member no instance claims", f.Others)
	}
	if got.Header.Workers != later.Totals.Workers || got.Header.Target != "2" || got.Header.Paused {
		t.Errorf("header %+v", got.Header)
	}
	if got.Latency.Predict.P99 != later.Predict.Quantile(99) || got.Latency.E2E.P99 != later.EndToEnd.Quantile(99) || got.Latency.E2E.P99 == 0 {
		t.Errorf("latency predict p99 %v e2e p99 %v, want the view's merges %v %v", got.Latency.Predict.P99, got.Latency.E2E.P99, later.Predict.Quantile(99), later.EndToEnd.Quantile(99))
	}
	// Rows per second by version: each live instance served 100*(i+1)
	// more rows of its first version in the second.
	want := map[int64]float64{}
	for i, s := range snaps {
		if s.Instance != lost {
			want[s.Versions[0].Version] += float64(100 * (i + 1))
		}
	}
	if len(got.Models.Versions) != 2 {
		t.Fatalf("models %+v, want v1 and v2 from the fleet", got.Models.Versions)
	}
	for _, mv := range got.Models.Versions {
		if d := mv.Rate - want[mv.Version]; d > 0.01 || d < -0.01 {
			t.Errorf("v%d at %.1f rows/s, want %.1f", mv.Version, mv.Rate, want[mv.Version])
		}
		if mv.Served != (mv.Version == 2) || mv.P99 == 0 {
			t.Errorf("v%d: served %v p99 %v", mv.Version, mv.Served, mv.P99)
		}
	}
	if got.Latency.QPS <= 0 || got.Latency.Batch < 6 || got.Latency.Batch > 10 {
		t.Errorf("qps %.1f batch %.1f, want Predicts from the instances' batch sizes (6-10 rows)", got.Latency.QPS, got.Latency.Batch)
	}
	if got.Header.Served != 2 || got.Latency.Rows != want[1]+want[2] {
		t.Errorf("served v%d, rows %.0f/s, want v2 and %.0f", got.Header.Served, got.Latency.Rows, want[1]+want[2])
	}

	count := func(sub string) int {
		c := 0
		for _, e := range a.shown {
			if strings.Contains(e.Text, sub) {
				c++
			}
		}
		return c
	}
	if count("instance "+lost+" lost") != 1 || count("joined") != 0 {
		t.Errorf("events: want one 'lost' and no 'joined' for the instances already there: %+v", a.shown)
	}
	if count("alice@ops-1: target 2") != 1 || count("bob@ops-2: pause") != 1 {
		t.Errorf("fleet events: want this console's own once and another console's once: %+v", a.shown)
	}

	// The screen: the fleet view at 120x40 shows every instance.
	m := tui.NewStatic(got, true)
	m.SetSize(120, 40)
	scr := ansi.Strip(m.View().Content)
	for _, s := range []string{"workers 10 on 5 instances 1 lost", "web-01", "web-03", "└ w1", "qps "} {
		if !strings.Contains(scr, s) {
			t.Errorf("screen lacks %q:\n%s", s, scr)
		}
	}
}

// BenchmarkFleetRefresh is the per-refresh cost of folding a 50 x 8
// fleet's View into the console's data (outside View(), once a second).
func BenchmarkFleetRefresh(b *testing.B) {
	now := time.Now()
	snaps := fleettest.Snapshots(now, 50, 8)
	d := fleettest.Desired(now, 400)
	a := fleetAdapter()
	views := []fleet.View{fleet.ViewOf(now, fleettest.Group, d, 6, snaps, nil),
		fleet.ViewOf(now.Add(time.Second), fleettest.Group, d, 6, advanced(snaps, time.Second, ""), nil)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.applyFleetLocked(views[i%2])
	}
}
