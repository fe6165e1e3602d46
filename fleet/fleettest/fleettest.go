// Package fleettest builds realistic fleets without Kafka, for the tests
// and benchmarks of what renders a fleet.View (the console's panels, the
// triage report, `fleet status`): instances with members and partitions,
// latency windows of a few thousand samples, two model versions during a
// switch, a lost instance, a pinned one and one still applying the latest
// desired state. The same arguments always build the same fleet.
package fleettest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/pipeline"
)

// Group is the fixtures' consumer group.
const Group = pipeline.DefaultGroup

// Snapshots are instances web-01.. each running members members over a
// partitions-partition input, as heard at now.
func Snapshots(now time.Time, instances, members int) []*fleet.Snapshot {
	rng := rand.New(rand.NewPCG(uint64(instances), uint64(members)))
	partitions := max(instances*members, pipeline.InputPartitions)
	out := make([]*fleet.Snapshot, 0, instances)
	next := int32(0)
	for i := 0; i < instances; i++ {
		name := fmt.Sprintf("web-%02d", i+1)
		s := &fleet.Snapshot{Schema: fleet.SnapshotSchema, Instance: name, Host: name + ".prod.example", PID: 4000 + i,
			Inferops: "v1.4.0", Started: now.Add(-time.Duration(3+i) * time.Hour).UTC(), Time: now.Add(-time.Duration(rng.IntN(900)) * time.Millisecond).UTC(),
			IntervalMs: 1000, Group: Group, Input: pipeline.DefaultInput, Output: pipeline.DefaultOutput, DLQ: pipeline.DefaultDLQ,
			Model: pipeline.DefaultModel, Target: "2", Workers: members, Partitions: partitions, Breaker: "closed",
			Control: fleet.Control{Mode: fleet.ModeFollow, Seq: 7, Offset: 6, Share: members}}
		for m := 0; m < members; m++ {
			ps := []int32{}
			for k := 0; k < partitions/(instances*members) && next < int32(partitions); k++ {
				ps = append(ps, next)
				next++
			}
			in := 250 + rng.Float64()*50
			s.Members = append(s.Members, fleet.Member{ClientID: fmt.Sprintf("inferops-%s-w%d", name, m+1),
				MemberID: fmt.Sprintf("inferops-%s-w%d-%08x", name, m+1, rng.Uint32()), Partitions: ps,
				InRate: in, OutRate: in - rng.Float64()*3, InFlight: rng.IntN(64), AvgBatch: 6 + rng.Float64()*4})
			s.InRate += in
			s.OutRate += in - 1
		}
		s.Consumed = uint64(s.InRate * 3600 * float64(3+i))
		s.Produced = s.Consumed - 900
		s.DLQTotal, s.DLQReasons = 120, map[string]uint64{pipeline.ReasonInvalidJSON: 100, pipeline.ReasonWrongWidth: 20}
		s.Lag = int64(rng.IntN(400))
		rows := int(s.OutRate * 10)
		s.Predict, s.EndToEnd = hist(rng, rows/8, 600*time.Microsecond), hist(rng, rows, 8*time.Millisecond)
		s.Versions = []fleet.VersionRow{{Version: 2, Rows: s.Produced, All: true}}
		switch {
		case i == 1 && instances > 2: // mid-switch: v1 still served part of the window
			p1, e1 := hist(rng, rows/40, 700*time.Microsecond), hist(rng, rows/5, 9*time.Millisecond)
			p2, e2 := hist(rng, rows/10, 600*time.Microsecond), hist(rng, rows*4/5, 8*time.Millisecond)
			s.Predict, s.EndToEnd = fleet.Merge(p1, p2), fleet.Merge(e1, e2)
			s.Versions = []fleet.VersionRow{{Version: 1, Rows: s.Produced / 3, Predict: p1, EndToEnd: e1}, {Version: 2, Rows: s.Produced * 2 / 3, Predict: p2, EndToEnd: e2}}
		case i == 2 && instances > 3: // applying the latest change
			s.Control.Seq, s.Control.Offset = 6, 5
		case i == instances-1 && instances > 4: // SIGKILLed 8 s ago
			s.Time = now.Add(-8 * time.Second).UTC()
		case i == instances-2 && instances > 5:
			s.Control = fleet.Control{Mode: fleet.ModePinned, Offset: -1, Share: -1}
			s.Target = "1"
			s.Versions = []fleet.VersionRow{{Version: 1, Rows: s.Produced, All: true}}
		}
		out = append(out, s)
	}
	return out
}

// Desired is the fixtures' desired state: seq 7 at offset 6.
func Desired(now time.Time, workers int) *fleet.Desired {
	return &fleet.Desired{V: fleet.ControlSchema, Group: Group, Seq: 7, Workers: &workers, Target: "2",
		By: "alice@ops-1", At: now.Add(-40 * time.Second).UTC(), Change: "target 2"}
}

// View is a fleet of instances x members with its desired state and the
// fleet events of the latest change.
func View(now time.Time, instances, members int) fleet.View {
	snaps := Snapshots(now, instances, members)
	d := Desired(now, instances*members)
	v := fleet.ViewOf(now, Group, d, 6, snaps, nil)
	v.Events = []pipeline.Event{
		{Time: now.Add(-40 * time.Second), Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Message: "alice@ops-1: target 2 (seq 7)"},
		{Time: now.Add(-39 * time.Second), Source: pipeline.SourceFleet, Kind: pipeline.KindControl, Message: fmt.Sprintf("%d/%d instances applied target 2 in 1.4 s", v.Totals.Applied, v.Totals.Following)},
	}
	return v
}

// hist is n samples around median m, log-normal with a tail, in the
// worker's geometry.
func hist(rng *rand.Rand, n int, m time.Duration) fleet.Hist {
	h := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)
	mu := math.Log(float64(m.Microseconds()))
	for j := 0; j < n; j++ {
		_ = h.RecordValue(int64(math.Exp(mu + 0.45*rng.NormFloat64())))
	}
	return fleet.HistOf(h)
}
