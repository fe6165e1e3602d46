package cluster

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestLagSeconds(t *testing.T) {
	type pt struct {
		off int64
		sec float64
	}
	// 10 records/s from offset 100 at t=0 to offset 200 at t=10.
	steady := []pt{{100, 0}, {150, 5}, {200, 10}}
	tests := []struct {
		name      string
		points    []pt
		committed int64
		now       float64
		want      float64
	}{
		{"nothing committed", steady, -1, 10, -1},
		{"no samples", nil, 5, 10, -1},
		{"one sample, caught up", []pt{{100, 0}}, 100, 10, 0},
		{"one sample, behind: unknown", []pt{{100, 0}}, 50, 10, -1},
		{"at the log end", steady, 200, 12, 0},
		{"past the log end (race)", steady, 201, 12, 0},
		{"exactly on a sample", steady, 150, 10, 5},
		{"interpolated between samples", steady, 175, 10, 2.5},
		{"interpolated, later now", steady, 120, 20, 18},
		{"before the window: extrapolated", steady, 50, 10, 15},
		{"flat log end: no rate to extrapolate", []pt{{100, 0}, {100, 10}}, 50, 10, -1},
		// The log end sat at 100 from t=0 to t=8, then jumped to 200 at
		// t=10: the run collapses to its ends, so record 150 is placed
		// between t=8 and t=10, not between t=0 and t=10.
		{"run of equal offsets", []pt{{100, 0}, {100, 4}, {100, 8}, {200, 10}}, 150, 10, 1},
		{"committed at a run's offset", []pt{{100, 0}, {100, 4}, {100, 8}, {200, 10}}, 100, 10, 2},
		// A truncated or recreated topic resets the table.
		{"log went backwards", []pt{{500, 0}, {600, 1}, {10, 5}, {20, 6}}, 15, 6, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newLagTable(60)
			for _, p := range tt.points {
				tab.add(p.off, at(p.sec))
			}
			got := tab.lagSeconds(tt.committed, at(tt.now))
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("lagSeconds(%d) at t=%v = %v, want %v (points %+v)", tt.committed, tt.now, got, tt.want, tab.points)
			}
		})
	}
}

func TestLagTableBounded(t *testing.T) {
	tab := newLagTable(5)
	for i := 0; i < 100; i++ {
		tab.add(int64(i*10), at(float64(i)))
	}
	if len(tab.points) != 5 || tab.points[0].Offset != 950 {
		t.Fatalf("points = %+v, want the last 5", tab.points)
	}
	// Equal offsets collapse to two points however long the run.
	tab = newLagTable(5)
	for i := 0; i < 100; i++ {
		tab.add(7, at(float64(i)))
	}
	if len(tab.points) != 2 || !tab.points[0].Time.Equal(at(0)) || !tab.points[1].Time.Equal(at(99)) {
		t.Fatalf("flat run = %+v, want its first and last sample", tab.points)
	}
	// Samples not newer than the last are ignored.
	tab.add(8, at(50))
	if len(tab.points) != 2 {
		t.Fatalf("an out-of-order sample was kept: %+v", tab.points)
	}
}
