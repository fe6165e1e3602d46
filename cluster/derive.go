package cluster

import (
	"sort"
	"time"
)

// fetched is what one refresh read from Kafka at one moment, before any
// arithmetic: the whole input of derive. A partition missing from a map was
// not read this time (leader unknown, an error on its block), which derive
// must tell apart from a value of 0.
type fetched struct {
	Time    time.Time // when the last answer arrived; the snapshot's time
	Topic   string
	Group   string
	Brokers int // brokers the client knows

	Partitions     []int32         // the topic's, sorted; sarama's cached slice, so never modified
	Leaders        map[int32]int32 // absent or -1 = leader unknown
	HighWatermarks map[int32]int64
	LogStarts      map[int32]int64 // only in refreshes that re-read them (WithLogStartEvery)
	Committed      map[int32]int64 // as OffsetFetch answered: absent or -1 = no commit

	GroupState string   // "" when the coordinator did not describe the group
	Members    []Member // decoded assignments, sorted by client id then member id

	Requests int // Kafka requests the fetch sent
}

// lagRules are the settings derive applies, fixed for a Collector's life.
type lagRules struct {
	window     int   // Burrow's intervals: observations before a partition can be anything but OK
	allowedLag int64 // the lag Burrow's rules tolerate
	samples    int   // log-end samples per partition kept for lag in seconds
}

// lagState is what derive remembers between refreshes. Its zero value is
// the state before the first refresh. Like append, derive reuses the state
// it is given (copying 60 samples for each of 10,000 partitions every tick
// would cost more than the refresh): keep only the state it returns.
type lagState struct {
	parts map[int32]*partState
	gen   uint64 // counts derives, to drop partitions a fetch no longer lists
}

type partState struct {
	gen        uint64 // the derive that last saw this partition
	table      *lagTable
	window     []commitEntry
	logStart   int64 // the last log start read; they are re-read only now and then
	prevTime   time.Time
	prevHWM    int64
	prevCommit int64
}

// derive turns one fetch into a Snapshot, given the state the previous
// derive returned, and returns the next state. It reads no clock (time is
// f.Time) and does no I/O, so every lag rule can be table-tested without a
// broker. RefreshTook and the exact lag times are the caller's.
func derive(r lagRules, prev lagState, f fetched) (*Snapshot, lagState) {
	st := prev
	if st.parts == nil {
		st.parts = make(map[int32]*partState, len(f.Partitions))
	}
	st.gen++
	snap := &Snapshot{
		Time: f.Time, Topic: f.Topic, Group: f.Group,
		GroupState:      f.GroupState,
		MaxLagPartition: -1,
		Brokers:         f.Brokers,
		Members:         f.Members,
		Partitions:      make([]PartitionLag, 0, len(f.Partitions)),
		Requests:        f.Requests,
	}
	if snap.Members == nil {
		snap.Members = []Member{} // JSON [] rather than null
	}
	owner := map[int32]string{}
	for _, m := range snap.Members {
		for _, p := range m.Partitions {
			owner[p] = m.ClientID
		}
	}
	for _, p := range f.Partitions {
		ps := st.parts[p]
		if ps == nil {
			ps = &partState{table: newLagTable(r.samples), logStart: -1, prevHWM: -1, prevCommit: -1}
			st.parts[p] = ps
		}
		ps.gen = st.gen
		snap.Partitions = append(snap.Partitions, ps.derive(r, &f, p, owner[p]))
	}
	for p, ps := range st.parts {
		if ps.gen != st.gen {
			delete(st.parts, p) // gone from the topic's metadata
		}
	}
	sort.Slice(snap.Partitions, func(i, j int) bool { return snap.Partitions[i].Partition < snap.Partitions[j].Partition })
	for i := range snap.Partitions {
		pl := &snap.Partitions[i]
		if pl.Lag < 0 {
			continue // no lag figure: a guess would distort the totals
		}
		snap.TotalLag += pl.Lag
		if pl.Lag > snap.MaxLag || snap.MaxLagPartition < 0 {
			snap.MaxLag, snap.MaxLagPartition = pl.Lag, pl.Partition
		}
	}
	snap.Status = groupStatus(snap.Partitions)
	return snap, st
}

// derive computes partition p's figures from this fetch and moves its state
// on. Every per-partition rule lives here: what a lag is, which observations
// enter Burrow's window, when a rate means something.
func (ps *partState) derive(r lagRules, f *fetched, p int32, owner string) PartitionLag {
	now := f.Time
	leader, ok := f.Leaders[p]
	if !ok {
		leader = -1
	}
	pl := PartitionLag{Partition: p, Leader: leader, LogStart: ps.logStart, HighWatermark: -1, Committed: -1, Lag: -1, LagSeconds: -1, Member: owner}
	if o, ok := f.LogStarts[p]; ok {
		ps.logStart, pl.LogStart = o, o
	}
	hwm, haveHWM := f.HighWatermarks[p]
	if haveHWM {
		pl.HighWatermark = hwm
		ps.table.add(hwm, now)
	}
	if o, ok := f.Committed[p]; ok && o >= 0 {
		pl.Committed = o
	}
	switch {
	case pl.Committed >= 0 && haveHWM:
		pl.Lag = max(hwm-pl.Committed, 0) // offsets read in parallel race: floor at 0
		pl.LagSeconds = ps.table.lagSeconds(pl.Committed, now)
		ps.window = append(ps.window, commitEntry{Time: now, Offset: pl.Committed, Lag: pl.Lag})
		if len(ps.window) > r.window {
			ps.window = append(ps.window[:0], ps.window[len(ps.window)-r.window:]...)
		}
	case pl.Committed < 0:
		// No commit: no lag figure (lag.md: show "-", not the whole log),
		// and a window from earlier commits (since deleted or expired) no
		// longer describes this consumer.
		ps.window = ps.window[:0]
	}
	// A commit without a log end this time leaves the window as it was: one
	// missed read is not evidence about the consumer.
	if dt := now.Sub(ps.prevTime).Seconds(); !ps.prevTime.IsZero() && dt > 0 {
		// Offsets that went backwards (a reset, a recreated topic) give no rate.
		if haveHWM && ps.prevHWM >= 0 && hwm >= ps.prevHWM {
			pl.ProduceRate = float64(hwm-ps.prevHWM) / dt
		}
		if pl.Committed >= 0 && ps.prevCommit >= 0 && pl.Committed >= ps.prevCommit {
			pl.ConsumeRate = float64(pl.Committed-ps.prevCommit) / dt
		}
	}
	ps.prevTime, ps.prevHWM, ps.prevCommit = now, pl.HighWatermark, pl.Committed
	pl.Status = evaluatePartition(ps.window, pl.Member != "", r.allowedLag, r.window)
	return pl
}
