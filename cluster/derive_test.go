package cluster

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"testing"
)

// unread leaves an offset out of a test fetch, as when the partition's
// leader was unknown or its block came back with an error.
const unread = math.MinInt64

// partRead is what a test fetch read of one partition.
type partRead struct {
	p        int32
	leader   int32
	hwm      int64
	commit   int64 // -1 is what OffsetFetch answers for "no commit"; unread leaves it out
	logStart int64
	owner    string // client id of the member holding it; "" = unassigned
}

// read is partition p with its log end and commit read, its log start not
// re-read this time, on leader 0, unassigned.
func read(p int32, hwm, commit int64) partRead {
	return partRead{p: p, hwm: hwm, commit: commit, logStart: unread}
}

func (r partRead) ownedBy(clientID string) partRead { r.owner = clientID; return r }
func (r partRead) logStartAt(o int64) partRead      { r.logStart = o; return r }
func (r partRead) noLeader() partRead               { r.leader = -1; return r }

// fetchAt is one fetch of topic "t" for group "g" at t0+sec, with a member
// per distinct owner.
func fetchAt(sec float64, parts ...partRead) fetched {
	f := fetched{
		Time: at(sec), Topic: "t", Group: "g", Brokers: 1, Requests: 3,
		Leaders:        map[int32]int32{},
		HighWatermarks: map[int32]int64{},
		LogStarts:      map[int32]int64{},
		Committed:      map[int32]int64{},
		GroupState:     "Empty",
		Members:        []Member{},
	}
	owned := map[string][]int32{}
	for _, r := range parts {
		f.Partitions = append(f.Partitions, r.p)
		f.Leaders[r.p] = r.leader
		if r.hwm != unread {
			f.HighWatermarks[r.p] = r.hwm
		}
		if r.commit != unread {
			f.Committed[r.p] = r.commit
		}
		if r.logStart != unread {
			f.LogStarts[r.p] = r.logStart
		}
		if r.owner != "" {
			owned[r.owner] = append(owned[r.owner], r.p)
		}
	}
	for id, ps := range owned {
		f.Members = append(f.Members, Member{MemberID: id + "-1", ClientID: id, Host: "/10.0.0.1", Partitions: ps})
	}
	sort.Slice(f.Members, func(i, j int) bool { return f.Members[i].ClientID < f.Members[j].ClientID })
	if len(f.Members) > 0 {
		f.GroupState = "Stable"
	}
	return f
}

// pl is a partition figure with every unknown at its "not known" value;
// cases set what they expect to be known.
func pl(p int32) PartitionLag {
	return PartitionLag{Partition: p, LogStart: -1, HighWatermark: -1, Committed: -1, Lag: -1, LagSeconds: -1}
}

func TestDerive(t *testing.T) {
	window3 := lagRules{window: 3, samples: 60}
	type want struct {
		parts    []PartitionLag
		total    int64
		maxLag   int64
		maxPart  int32
		status   Status
		inMemory int // partitions the next state remembers
	}
	tests := []struct {
		name     string
		rules    lagRules
		fetches  []fetched
		statuses []Status // the group's after each fetch, when the path matters
		want     want     // the last snapshot
	}{
		// Offset lag.
		{
			name:    "lag = log end - commit",
			fetches: []fetched{fetchAt(0, read(0, 20, 4), read(1, 23, 23))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 20, Committed: 4, Lag: 16, LagSeconds: -1},
				{Partition: 1, LogStart: -1, HighWatermark: 23, Committed: 23, Lag: 0, LagSeconds: 0},
			}, total: 16, maxLag: 16, maxPart: 0, inMemory: 2},
		},
		{
			name:    "a commit read after newer records than the log end floors at 0",
			fetches: []fetched{fetchAt(0, read(0, 10, 12))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 12, Lag: 0, LagSeconds: 0},
			}, maxPart: 0, inMemory: 1},
		},
		{
			name: "no commit: no lag figure, not in the totals, OK",
			fetches: []fetched{fetchAt(0,
				read(0, 10, 4),
				read(1, 50, -1),     // OffsetFetch said -1
				read(2, 70, unread), // OffsetFetch left it out
			)},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 4, Lag: 6, LagSeconds: -1},
				func() PartitionLag { p := pl(1); p.HighWatermark = 50; return p }(),
				func() PartitionLag { p := pl(2); p.HighWatermark = 70; return p }(),
			}, total: 6, maxLag: 6, maxPart: 0, inMemory: 3},
		},
		{
			name:    "nothing committed anywhere: no max-lag partition",
			fetches: []fetched{fetchAt(0, read(0, 10, -1), read(1, 10, -1))},
			want: want{parts: []PartitionLag{
				func() PartitionLag { p := pl(0); p.HighWatermark = 10; return p }(),
				func() PartitionLag { p := pl(1); p.HighWatermark = 10; return p }(),
			}, maxPart: -1, inMemory: 2},
		},
		{
			name:    "log end not read (leader unknown): no lag figure, commit still shown",
			fetches: []fetched{fetchAt(0, read(0, unread, 5).noLeader())},
			want: want{parts: []PartitionLag{
				func() PartitionLag { p := pl(0); p.Leader = -1; p.Committed = 5; return p }(),
			}, maxPart: -1, inMemory: 1},
		},
		{
			name:    "max lag: the partition with most, lowest number on a tie",
			fetches: []fetched{fetchAt(0, read(0, 10, 7), read(1, 19, 10), read(2, 29, 20), read(3, 500, -1))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 7, Lag: 3, LagSeconds: -1},
				{Partition: 1, LogStart: -1, HighWatermark: 19, Committed: 10, Lag: 9, LagSeconds: -1},
				{Partition: 2, LogStart: -1, HighWatermark: 29, Committed: 20, Lag: 9, LagSeconds: -1},
				func() PartitionLag { p := pl(3); p.HighWatermark = 500; return p }(),
			}, total: 21, maxLag: 9, maxPart: 1, inMemory: 4},
		},
		{
			name:    "partitions come out by number whatever the fetch order",
			fetches: []fetched{fetchAt(0, read(2, 5, 5), read(0, 5, 5), read(1, 5, 5))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 5, Committed: 5, Lag: 0, LagSeconds: 0},
				{Partition: 1, LogStart: -1, HighWatermark: 5, Committed: 5, Lag: 0, LagSeconds: 0},
				{Partition: 2, LogStart: -1, HighWatermark: 5, Committed: 5, Lag: 0, LagSeconds: 0},
			}, maxPart: 0, inMemory: 3},
		},

		// Rates.
		{
			name:    "rates from consecutive fetches",
			fetches: []fetched{fetchAt(0, read(0, 10, 5)), fetchAt(2, read(0, 40, 25))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 40, Committed: 25, Lag: 15, LagSeconds: 1, ProduceRate: 15, ConsumeRate: 10},
			}, total: 15, maxLag: 15, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no rate across a log that went backwards (topic recreated)",
			fetches: []fetched{fetchAt(0, read(0, 100, 50)), fetchAt(2, read(0, 10, 5))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 5, Lag: 5, LagSeconds: -1},
			}, total: 5, maxLag: 5, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no consume rate across a commit reset backwards",
			fetches: []fetched{fetchAt(0, read(0, 100, 90)), fetchAt(2, read(0, 120, 20))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 120, Committed: 20, Lag: 100, LagSeconds: 2 + 80.0/10, ProduceRate: 10},
			}, total: 100, maxLag: 100, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no consume rate from a commit that was missing last time",
			fetches: []fetched{fetchAt(0, read(0, 10, -1)), fetchAt(2, read(0, 30, 20))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 30, Committed: 20, Lag: 10, LagSeconds: 1, ProduceRate: 10},
			}, total: 10, maxLag: 10, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no rate between fetches at the same instant",
			fetches: []fetched{fetchAt(5, read(0, 10, 5)), fetchAt(5, read(0, 40, 5))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 40, Committed: 5, Lag: 35, LagSeconds: -1},
			}, total: 35, maxLag: 35, maxPart: 0, inMemory: 1},
		},

		// Lag in seconds, interpolated from the log ends seen.
		{
			name:    "lag seconds: one log-end sample is not enough",
			fetches: []fetched{fetchAt(0, read(0, 100, 50))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 100, Committed: 50, Lag: 50, LagSeconds: -1},
			}, total: 50, maxLag: 50, maxPart: 0, inMemory: 1},
		},
		{
			name:    "lag seconds: commit at the latest log end is 0",
			fetches: []fetched{fetchAt(0, read(0, 100, 40)), fetchAt(10, read(0, 200, 200))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 200, Lag: 0, LagSeconds: 0, ProduceRate: 10, ConsumeRate: 16},
			}, maxPart: 0, inMemory: 1},
		},
		{
			// The log end was 100 at t=0 and 200 at t=10: record 150 was
			// written at t=5, so at t=10 the group is 5 s behind.
			name:    "lag seconds: interpolated between two samples",
			fetches: []fetched{fetchAt(0, read(0, 100, 100)), fetchAt(10, read(0, 200, 150))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 150, Lag: 50, LagSeconds: 5, ProduceRate: 10, ConsumeRate: 5},
			}, total: 50, maxLag: 50, maxPart: 0, inMemory: 1},
		},
		{
			// 10 records/s over the window put record 50 at t=-5.
			name:    "lag seconds: a commit older than the samples is extrapolated",
			fetches: []fetched{fetchAt(0, read(0, 100, 50)), fetchAt(10, read(0, 200, 50))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 50, Lag: 150, LagSeconds: 15, ProduceRate: 10},
			}, total: 150, maxLag: 150, maxPart: 0, inMemory: 1},
		},
		{
			name:    "lag seconds: a log end that never moved gives no rate to extrapolate",
			fetches: []fetched{fetchAt(0, read(0, 100, 50)), fetchAt(10, read(0, 100, 50))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 100, Committed: 50, Lag: 50, LagSeconds: -1},
			}, total: 50, maxLag: 50, maxPart: 0, inMemory: 1},
		},
		{
			name:    "lag seconds: samples are per partition",
			fetches: []fetched{fetchAt(0, read(0, 100, 100), read(1, 0, 0)), fetchAt(10, read(0, 200, 150), read(1, 20, 10))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 150, Lag: 50, LagSeconds: 5, ProduceRate: 10, ConsumeRate: 5},
				{Partition: 1, LogStart: -1, HighWatermark: 20, Committed: 10, Lag: 10, LagSeconds: 5, ProduceRate: 2, ConsumeRate: 1},
			}, total: 60, maxLag: 50, maxPart: 0, inMemory: 2},
		},

		// Log start, read only every WithLogStartEvery.
		{
			name: "log start remembered between re-reads",
			fetches: []fetched{
				fetchAt(0, read(0, 10, 6).logStartAt(4)),
				fetchAt(1, read(0, 10, 6)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 4, HighWatermark: 10, Committed: 6, Lag: 4, LagSeconds: -1},
			}, total: 4, maxLag: 4, maxPart: 0, inMemory: 1},
		},
		{
			name: "log start replaced by the next re-read",
			fetches: []fetched{
				fetchAt(0, read(0, 10, 10).logStartAt(4)),
				fetchAt(1, read(0, 10, 10)),
				fetchAt(2, read(0, 10, 10).logStartAt(7)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 7, HighWatermark: 10, Committed: 10, Lag: 0, LagSeconds: 0},
			}, maxPart: 0, inMemory: 1},
		},

		// Partitions leaving the metadata.
		{
			name: "a partition gone from the fetch is gone from the snapshot and the state",
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5), read(1, 10, 5).logStartAt(2)),
				fetchAt(2, read(0, 30, 5)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 30, Committed: 5, Lag: 25, LagSeconds: 2 + 5.0/10, ProduceRate: 10},
			}, total: 25, maxLag: 25, maxPart: 0, inMemory: 1},
		},
		{
			name: "a partition that comes back starts afresh: no rate, log start forgotten",
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5), read(1, 10, 5).logStartAt(2)),
				fetchAt(2, read(0, 10, 5)),
				fetchAt(4, read(0, 10, 5), read(1, 30, 25)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 5, Lag: 5, LagSeconds: -1},
				{Partition: 1, LogStart: -1, HighWatermark: 30, Committed: 25, Lag: 5, LagSeconds: -1},
			}, total: 10, maxLag: 5, maxPart: 0, inMemory: 2},
		},

		// Burrow's rules, on a window of 3 observations.
		{
			name:  "burrow: too few observations is OK",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5)),
				fetchAt(1, read(0, 11, 5)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 11, Committed: 5, Lag: 6, LagSeconds: 1 + 5, ProduceRate: 1},
			}, total: 6, maxLag: 6, maxPart: 0, inMemory: 1},
		},
		{
			name:  "burrow: STOP when nobody holds it and the commit never moves",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5)),
				fetchAt(1, read(0, 11, 5)),
				fetchAt(2, read(0, 12, 5)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 12, Committed: 5, Lag: 7, LagSeconds: 2 + 5, ProduceRate: 1, Status: StatusStop},
			}, total: 7, maxLag: 7, maxPart: 0, status: StatusErr, inMemory: 1},
		},
		{
			name:  "burrow: STALL when a member holds it and the commit never moves",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5).ownedBy("w")),
				fetchAt(1, read(0, 11, 5).ownedBy("w")),
				fetchAt(2, read(0, 12, 5).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 12, Committed: 5, Lag: 7, LagSeconds: 2 + 5, ProduceRate: 1, Member: "w", Status: StatusStall},
			}, total: 7, maxLag: 7, maxPart: 0, status: StatusErr, inMemory: 1},
		},
		{
			name:  "burrow: WARN when the lag never decreases",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5).ownedBy("w")),
				fetchAt(1, read(0, 12, 6).ownedBy("w")),
				fetchAt(2, read(0, 14, 7).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", Status: StatusWarn},
			}, total: 7, maxLag: 7, maxPart: 0, status: StatusWarn, inMemory: 1},
		},
		{
			name:  "burrow: OK when the lag went down once in the window",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5).ownedBy("w")),
				fetchAt(1, read(0, 12, 8).ownedBy("w")),
				fetchAt(2, read(0, 14, 9).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 9, Lag: 5, LagSeconds: 2 + 0.5, ProduceRate: 2, ConsumeRate: 1, Member: "w"},
			}, total: 5, maxLag: 5, maxPart: 0, inMemory: 1},
		},
		{
			name:  "burrow: REWIND when the commit went backwards",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 20, 10).ownedBy("w")),
				fetchAt(1, read(0, 20, 12).ownedBy("w")),
				fetchAt(2, read(0, 20, 8).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 20, Committed: 8, Lag: 12, LagSeconds: -1, Member: "w", Status: StatusRewind},
			}, total: 12, maxLag: 12, maxPart: 0, status: StatusErr, inMemory: 1},
		},
		{
			name:     "burrow: OK once caught up, even after STOP",
			rules:    window3,
			statuses: []Status{StatusOK, StatusOK, StatusErr, StatusOK},
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5)),
				fetchAt(1, read(0, 10, 5)),
				fetchAt(2, read(0, 10, 5)),
				fetchAt(3, read(0, 10, 10)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 10, Lag: 0, LagSeconds: 0, ConsumeRate: 5},
			}, maxPart: 0, inMemory: 1},
		},
		{
			name:  "burrow: OK when it caught up earlier in the window",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 10).ownedBy("w")),
				fetchAt(1, read(0, 14, 12).ownedBy("w")),
				fetchAt(2, read(0, 18, 14).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 18, Committed: 14, Lag: 4, LagSeconds: 1, ProduceRate: 4, ConsumeRate: 2, Member: "w"},
			}, total: 4, maxLag: 4, maxPart: 0, inMemory: 1},
		},
		{
			name:  "burrow: lag within the allowed lag counts as caught up",
			rules: lagRules{window: 3, allowedLag: 5, samples: 60},
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5).ownedBy("w")),
				fetchAt(1, read(0, 12, 6).ownedBy("w")),
				fetchAt(2, read(0, 14, 7).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w"},
			}, total: 7, maxLag: 7, maxPart: 0, inMemory: 1},
		},
		{
			name:  "burrow: the window is the last observations only",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 10).ownedBy("w")), // caught up, then out of the window
				fetchAt(1, read(0, 12, 10).ownedBy("w")),
				fetchAt(2, read(0, 14, 10).ownedBy("w")),
				fetchAt(3, read(0, 16, 10).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 16, Committed: 10, Lag: 6, LagSeconds: 3, ProduceRate: 2, Member: "w", Status: StatusStall},
			}, total: 6, maxLag: 6, maxPart: 0, status: StatusErr, inMemory: 1},
		},
		{
			name:     "burrow: a commit that disappears empties the window",
			rules:    window3,
			statuses: []Status{StatusOK, StatusOK, StatusOK, StatusOK},
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5)),
				fetchAt(1, read(0, 11, 5)),
				fetchAt(2, read(0, 12, -1)),
				fetchAt(3, read(0, 13, 5)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 13, Committed: 5, Lag: 8, LagSeconds: 3 + 5, ProduceRate: 1},
			}, total: 8, maxLag: 8, maxPart: 0, inMemory: 1},
		},
		{
			name:     "burrow: a fetch without the log end keeps the window and its verdict",
			rules:    window3,
			statuses: []Status{StatusOK, StatusOK, StatusErr, StatusErr},
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5)),
				fetchAt(1, read(0, 11, 5)),
				fetchAt(2, read(0, 12, 5)),
				fetchAt(3, read(0, unread, 5).noLeader()),
			},
			want: want{parts: []PartitionLag{
				func() PartitionLag { p := pl(0); p.Leader = -1; p.Committed = 5; p.Status = StatusStop; return p }(),
			}, maxPart: -1, status: StatusErr, inMemory: 1},
		},
		{
			name:  "group status: WARN is the worst of WARN and OK",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5).ownedBy("w"), read(1, 10, 10).ownedBy("w")),
				fetchAt(1, read(0, 12, 6).ownedBy("w"), read(1, 10, 10).ownedBy("w")),
				fetchAt(2, read(0, 14, 7).ownedBy("w"), read(1, 10, 10).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", Status: StatusWarn},
				{Partition: 1, LogStart: -1, HighWatermark: 10, Committed: 10, Lag: 0, LagSeconds: 0, Member: "w"},
			}, total: 7, maxLag: 7, maxPart: 0, status: StatusWarn, inMemory: 2},
		},
		{
			name:  "group status: ERR is the worst of WARN and STOP",
			rules: window3,
			fetches: []fetched{
				fetchAt(0, read(0, 10, 5).ownedBy("w"), read(1, 10, 5)),
				fetchAt(1, read(0, 12, 6).ownedBy("w"), read(1, 11, 5)),
				fetchAt(2, read(0, 14, 7).ownedBy("w"), read(1, 12, 5)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", Status: StatusWarn},
				{Partition: 1, LogStart: -1, HighWatermark: 12, Committed: 5, Lag: 7, LagSeconds: 2 + 5, ProduceRate: 1, Status: StatusStop},
			}, total: 14, maxLag: 7, maxPart: 0, status: StatusErr, inMemory: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := tt.rules
			if rules.window == 0 {
				rules = lagRules{window: 10, samples: 60}
			}
			var (
				st     lagState
				snaps  []*Snapshot
				frozen [][]byte
				s      *Snapshot
			)
			for _, f := range tt.fetches {
				s, st = derive(rules, st, f)
				b, err := json.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				snaps, frozen = append(snaps, s), append(frozen, b)
			}
			if tt.statuses != nil {
				var got []Status
				for _, s := range snaps {
					got = append(got, s.Status)
				}
				if !reflect.DeepEqual(got, tt.statuses) {
					t.Errorf("group status after each fetch %v, want %v", got, tt.statuses)
				}
			}
			w := tt.want
			if !reflect.DeepEqual(s.Partitions, w.parts) {
				t.Errorf("partitions:\n got %+v\nwant %+v", s.Partitions, w.parts)
			}
			if s.TotalLag != w.total || s.MaxLag != w.maxLag || s.MaxLagPartition != w.maxPart || s.Status != w.status {
				t.Errorf("total %d max %d at p%d status %v, want total %d max %d at p%d status %v",
					s.TotalLag, s.MaxLag, s.MaxLagPartition, s.Status, w.total, w.maxLag, w.maxPart, w.status)
			}
			if len(st.parts) != w.inMemory {
				t.Errorf("state remembers %d partitions, want %d", len(st.parts), w.inMemory)
			}
			// Snapshots are immutable once returned, though the state is reused.
			for i, s := range snaps {
				if b, _ := json.Marshal(s); string(b) != string(frozen[i]) {
					t.Errorf("snapshot %d changed after later derives:\n was %s\n now %s", i, frozen[i], b)
				}
			}
		})
	}
}

// TestDeriveSnapshotHeader: the fields derive copies from the fetch, and
// what it leaves to Refresh.
func TestDeriveSnapshotHeader(t *testing.T) {
	f := fetchAt(3, read(0, 10, 4).ownedBy("worker-b"), read(1, 10, 4).ownedBy("worker-a"), read(2, 10, 4).ownedBy("worker-b"))
	f.Brokers, f.Requests = 3, 7
	s, _ := derive(lagRules{window: 10, samples: 60}, lagState{}, f)
	if !s.Time.Equal(at(3)) || s.Topic != "t" || s.Group != "g" || s.GroupState != "Stable" || s.Brokers != 3 || s.Requests != 7 || s.RefreshTook != 0 {
		t.Errorf("header = time %v topic %q group %q state %q brokers %d requests %d took %v",
			s.Time, s.Topic, s.Group, s.GroupState, s.Brokers, s.Requests, s.RefreshTook)
	}
	if !reflect.DeepEqual(s.Members, f.Members) {
		t.Errorf("members = %+v, want the fetched %+v", s.Members, f.Members)
	}
	for p, want := range []string{"worker-b", "worker-a", "worker-b"} {
		if got := s.Partitions[p].Member; got != want {
			t.Errorf("p%d owner %q, want %q", p, got, want)
		}
	}

	// A group the coordinator did not describe: no state, members [] not null.
	f = fetchAt(0, read(0, 10, 4))
	f.GroupState, f.Members = "", nil
	s, _ = derive(lagRules{window: 10, samples: 60}, lagState{}, f)
	if b, _ := json.Marshal(s.Members); s.GroupState != "" || string(b) != "[]" {
		t.Errorf("undescribed group: state %q members %s, want \"\" and []", s.GroupState, b)
	}
}

// TestDeriveJSON pins the snapshot's JSON, nulls and all, for scripts that
// read `inferops status --json`.
func TestDeriveJSON(t *testing.T) {
	var st lagState
	r := lagRules{window: 10, samples: 60}
	_, st = derive(r, st, fetchAt(0, read(0, 100, 100).logStartAt(0).ownedBy("w"), read(1, 7, -1).logStartAt(2)))
	s, _ := derive(r, st, fetchAt(10, read(0, 200, 150).ownedBy("w"), read(1, 9, -1)))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"2026-01-01T00:00:10Z","topic":"t","group":"g","group_state":"Stable","status":"OK",` +
		`"total_lag":50,"max_lag_partition":0,"max_lag":50,"partitions":[` +
		`{"partition":0,"leader":0,"log_start":0,"high_watermark":200,"committed":150,"lag":50,"lag_seconds":5,"produce_rate":10,"consume_rate":5,"member":"w","status":"OK"},` +
		`{"partition":1,"leader":0,"log_start":2,"high_watermark":9,"committed":null,"lag":null,"lag_seconds":null,"produce_rate":0.2,"consume_rate":0,"member":"","status":"OK"}],` +
		`"members":[{"member_id":"w-1","client_id":"w","host":"/10.0.0.1","partitions":[0]}],` +
		`"brokers":1,"refresh_took_ns":0,"requests":3}`
	if string(b) != want {
		t.Errorf("json:\n got %s\nwant %s", b, want)
	}
}
