package doctor

import (
	"testing"

	"github.com/inferops/inferops/cluster"
)

func snap(lag int64, members int, parts ...cluster.PartitionLag) *cluster.Snapshot {
	s := &cluster.Snapshot{Topic: "ai_input", Group: "tf_serving_group", TotalLag: lag, Partitions: parts}
	for i := 0; i < members; i++ {
		s.Members = append(s.Members, cluster.Member{ClientID: "w"})
	}
	return s
}

func part(p int32, committed int64, st cluster.Status) cluster.PartitionLag {
	return cluster.PartitionLag{Partition: p, Committed: committed, Status: st}
}

func TestKafkaEvidence(t *testing.T) {
	twelve := func(st3 cluster.Status) []cluster.PartitionLag {
		var ps []cluster.PartitionLag
		for p := int32(0); p < 12; p++ {
			st := cluster.StatusOK
			if p == 3 {
				st = st3
			}
			ps = append(ps, part(p, 10, st))
		}
		return ps
	}
	tests := []struct {
		name       string
		window     []*cluster.Snapshot
		wantStatus string
		wantRules  []string
	}{
		{"empty window", nil, "", nil},
		{"lag growing with 4 of 12 partitions consumed", []*cluster.Snapshot{
			snap(100, 4, twelve(cluster.StatusOK)...), snap(900, 4, twelve(cluster.StatusOK)...), nil, snap(2500, 4, twelve(cluster.StatusWarn)...)},
			"WARN", []string{"lag-scale-workers"}},
		{"stalled partition named, not ERR", []*cluster.Snapshot{snap(50, 12, twelve(cluster.StatusStall)...)}, "STALL", []string{"consumer-stalled"}},
		{"stopped group", []*cluster.Snapshot{snap(50, 0, twelve(cluster.StatusStop)...)}, "STOP", []string{"consumer-stopped"}},
		{"never committed", []*cluster.Snapshot{snap(0, 0, part(0, -1, cluster.StatusOK), part(1, -1, cluster.StatusOK))}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := KafkaEvidence(tc.window, []string{"k1:9092"})
			if e.BurrowStatus != tc.wantStatus {
				t.Errorf("BurrowStatus %q, want %q", e.BurrowStatus, tc.wantStatus)
			}
			var got []string
			for _, a := range Advise(e) {
				got = append(got, a.Rule)
			}
			if len(got) != len(tc.wantRules) || (len(got) > 0 && got[0] != tc.wantRules[0]) {
				t.Fatalf("rules %v, want %v (evidence %+v)", got, tc.wantRules, e)
			}
			if len(tc.window) > 0 && (e.Topic != "ai_input" || len(e.Brokers) != 1) {
				t.Errorf("topic/brokers not carried: %+v", e)
			}
		})
	}
}
