package cluster

import "time"

// offsetTime is one sample of a partition's log-end offset.
type offsetTime struct {
	Offset int64
	Time   time.Time
}

// lagTable remembers when the log end reached which offset, so a committed
// offset can be turned into "how long ago was this produced" without reading
// records (the kafka-lag-exporter interpolation, lag.md).
type lagTable struct {
	points []offsetTime // strictly ordered by time; offsets non-decreasing
	max    int
}

func newLagTable(max int) *lagTable {
	if max < 2 {
		max = 2
	}
	return &lagTable{max: max}
}

// add records that the log end was at off at time at. A run of equal
// offsets is collapsed to its first and last sample: the first says when the
// log end got there, the last says it was still there (new records arrived
// after it), which bounds the interpolation for the next offsets.
func (t *lagTable) add(off int64, at time.Time) {
	n := len(t.points)
	if n > 0 && (off < t.points[n-1].Offset || !at.After(t.points[n-1].Time)) {
		if off < t.points[n-1].Offset {
			// The log went backwards: the topic was recreated or
			// truncated. Old points say nothing about the new log.
			t.points = t.points[:0]
			n = 0
		} else {
			return // a sample not newer than the last: ignore
		}
	}
	if n >= 2 && t.points[n-1].Offset == off && t.points[n-2].Offset == off {
		t.points[n-1].Time = at
		return
	}
	t.points = append(t.points, offsetTime{off, at})
	if len(t.points) > t.max {
		// Drop the oldest; copy so the backing array does not grow forever.
		t.points = append(t.points[:0], t.points[len(t.points)-t.max:]...)
	}
}

// lagSeconds is how long ago the log end reached committed: now - the time
// the first unconsumed record was produced, estimated by interpolating
// between the samples around it. It returns 0 when committed is at (or past)
// the latest log end and -1 when it cannot know (nothing committed, fewer
// than two samples, or no log-end movement to extrapolate from).
func (t *lagTable) lagSeconds(committed int64, now time.Time) float64 {
	if committed < 0 || len(t.points) == 0 {
		return -1
	}
	last := t.points[len(t.points)-1]
	if committed >= last.Offset {
		return 0
	}
	if len(t.points) < 2 {
		return -1
	}
	// upper is the first sample past committed; lower the one before it,
	// i.e. the last time the log end had not yet passed committed.
	upper := -1
	for i, p := range t.points {
		if p.Offset > committed {
			upper = i
			break
		}
	}
	var at time.Time
	if upper == 0 {
		// Older than the window: extrapolate at the window's average rate.
		first := t.points[0]
		span := last.Time.Sub(first.Time).Seconds()
		moved := float64(last.Offset - first.Offset)
		if span <= 0 || moved <= 0 {
			return -1
		}
		rate := moved / span
		at = first.Time.Add(-time.Duration(float64(first.Offset-committed) / rate * float64(time.Second)))
	} else {
		lo, hi := t.points[upper-1], t.points[upper]
		frac := float64(committed-lo.Offset) / float64(hi.Offset-lo.Offset)
		at = lo.Time.Add(time.Duration(frac * float64(hi.Time.Sub(lo.Time))))
	}
	lag := now.Sub(at).Seconds()
	if lag < 0 {
		return 0
	}
	return lag
}
