package cluster

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
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
	return PartitionLag{Partition: p, LogStart: -1, HighWatermark: -1, Committed: -1, Lag: -1, LagSeconds: -1, LagBasis: LagUnknown}
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
				{Partition: 0, LogStart: -1, HighWatermark: 20, Committed: 4, Lag: 16, LagSeconds: -1, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 23, Committed: 23, Lag: 0, LagSeconds: 0, LagBasis: LagCommitted},
			}, total: 16, maxLag: 16, maxPart: 0, inMemory: 2},
		},
		{
			name:    "a commit read after newer records than the log end floors at 0",
			fetches: []fetched{fetchAt(0, read(0, 10, 12))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 12, Lag: 0, LagSeconds: 0, LagBasis: LagCommitted},
			}, maxPart: 0, inMemory: 1},
		},
		{
			name: "no commit and no log start read: no lag figure (unknown), not in the totals",
			fetches: []fetched{fetchAt(0,
				read(0, 10, 4),
				read(1, 50, -1),     // OffsetFetch said -1
				read(2, 70, unread), // OffsetFetch left it out
			)},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 4, Lag: 6, LagSeconds: -1, LagBasis: LagCommitted},
				func() PartitionLag { p := pl(1); p.HighWatermark = 50; return p }(),
				func() PartitionLag { p := pl(2); p.HighWatermark = 70; return p }(),
			}, total: 6, maxLag: 6, maxPart: 0, inMemory: 3},
		},
		{
			name:    "nothing committed anywhere and no log start read: no max-lag partition",
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
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 7, Lag: 3, LagSeconds: -1, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 19, Committed: 10, Lag: 9, LagSeconds: -1, LagBasis: LagCommitted},
				{Partition: 2, LogStart: -1, HighWatermark: 29, Committed: 20, Lag: 9, LagSeconds: -1, LagBasis: LagCommitted},
				func() PartitionLag { p := pl(3); p.HighWatermark = 500; return p }(),
			}, total: 21, maxLag: 9, maxPart: 1, inMemory: 4},
		},
		{
			name:    "partitions come out by number whatever the fetch order",
			fetches: []fetched{fetchAt(0, read(2, 5, 5), read(0, 5, 5), read(1, 5, 5))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 5, Committed: 5, Lag: 0, LagSeconds: 0, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 5, Committed: 5, Lag: 0, LagSeconds: 0, LagBasis: LagCommitted},
				{Partition: 2, LogStart: -1, HighWatermark: 5, Committed: 5, Lag: 0, LagSeconds: 0, LagBasis: LagCommitted},
			}, maxPart: 0, inMemory: 3},
		},

		// The no-commit rule: without a commit the lag is the backlog of
		// the reset policy, never "-" and 0 in the totals.
		{
			name: "no commit, earliest: everything from the log start is lag, in the totals, not in committed_lag",
			fetches: []fetched{fetchAt(0,
				read(0, 20, 4).logStartAt(0),
				read(1, 50, -1).logStartAt(10), // OffsetFetch said -1
				read(2, 70, unread).logStartAt(0),
			)},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 0, HighWatermark: 20, Committed: 4, Lag: 16, LagSeconds: -1, LagBasis: LagCommitted},
				{Partition: 1, LogStart: 10, HighWatermark: 50, Committed: -1, Lag: 40, LagSeconds: -1, LagBasis: LagNoCommit, Status: StatusStop},
				{Partition: 2, LogStart: 0, HighWatermark: 70, Committed: -1, Lag: 70, LagSeconds: -1, LagBasis: LagNoCommit, Status: StatusStop},
			}, total: 126, maxLag: 70, maxPart: 2, status: StatusErr, inMemory: 3},
		},
		{
			name:    "no commit on an empty partition: lag 0, OK",
			fetches: []fetched{fetchAt(0, read(0, 10, -1).logStartAt(10))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 10, HighWatermark: 10, Committed: -1, Lag: 0, LagSeconds: 0, LagBasis: LagNoCommit},
			}, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no commit within the allowed lag: OK",
			rules:   lagRules{window: 3, allowedLag: 5, samples: 60},
			fetches: []fetched{fetchAt(0, read(0, 4, -1).logStartAt(0))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 0, HighWatermark: 4, Committed: -1, Lag: 4, LagSeconds: -1, LagBasis: LagNoCommit},
			}, total: 4, maxLag: 4, maxPart: 0, inMemory: 1},
		},
		{
			name: "no commit: the log start read earlier still counts",
			fetches: []fetched{
				fetchAt(0, read(0, 10, -1).logStartAt(3)),
				fetchAt(2, read(0, 30, -1)),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 3, HighWatermark: 30, Committed: -1, Lag: 27, LagSeconds: 2 + 7.0/10, ProduceRate: 10, LagBasis: LagNoCommit, Status: StatusStop},
			}, total: 27, maxLag: 27, maxPart: 0, status: StatusErr, inMemory: 1},
		},
		{
			name:     "no commit, owned: WARN until the owner has held it a whole window, then STALL",
			rules:    window3,
			statuses: []Status{StatusWarn, StatusWarn, StatusErr},
			fetches: []fetched{
				fetchAt(0, read(0, 10, -1).logStartAt(0).ownedBy("w")),
				fetchAt(1, read(0, 10, -1).ownedBy("w")),
				fetchAt(2, read(0, 10, -1).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 0, HighWatermark: 10, Committed: -1, Lag: 10, LagSeconds: -1, Member: "w", LagBasis: LagNoCommit, Status: StatusStall},
			}, total: 10, maxLag: 10, maxPart: 0, status: StatusErr, inMemory: 1},
		},
		{
			name:     "no commit, owned, then the first commit: Burrow's rules take over",
			rules:    window3,
			statuses: []Status{StatusWarn, StatusWarn, StatusOK},
			fetches: []fetched{
				fetchAt(0, read(0, 10, -1).logStartAt(0).ownedBy("w")),
				fetchAt(1, read(0, 12, -1).ownedBy("w")),
				fetchAt(2, read(0, 14, 6).ownedBy("w")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 0, HighWatermark: 14, Committed: 6, Lag: 8, LagSeconds: 2 + 4.0/2, ProduceRate: 2, Member: "w", LagBasis: LagCommitted},
			}, total: 8, maxLag: 8, maxPart: 0, inMemory: 1},
		},
		{
			name:     "no commit, owner gone: STOP at once, and WARN again from scratch when owned",
			rules:    window3,
			statuses: []Status{StatusWarn, StatusWarn, StatusErr, StatusWarn},
			fetches: []fetched{
				fetchAt(0, read(0, 10, -1).logStartAt(0).ownedBy("w")),
				fetchAt(1, read(0, 10, -1).ownedBy("w")),
				fetchAt(2, read(0, 10, -1)),
				fetchAt(3, read(0, 10, -1).ownedBy("v")),
			},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 0, HighWatermark: 10, Committed: -1, Lag: 10, LagSeconds: -1, Member: "v", LagBasis: LagNoCommit, Status: StatusWarn},
			}, total: 10, maxLag: 10, maxPart: 0, status: StatusWarn, inMemory: 1},
		},
		{
			name:    "no commit, latest: the group starts at the log end, lag 0, OK",
			rules:   lagRules{window: 10, samples: 60, reset: ResetLatest},
			fetches: []fetched{fetchAt(0, read(0, 20, 4).logStartAt(0), read(1, 50, -1).logStartAt(10))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: 0, HighWatermark: 20, Committed: 4, Lag: 16, LagSeconds: -1, LagBasis: LagCommitted},
				{Partition: 1, LogStart: 10, HighWatermark: 50, Committed: -1, Lag: 0, LagSeconds: 0, LagBasis: LagNoCommit},
			}, total: 16, maxLag: 16, maxPart: 0, inMemory: 2},
		},
		{
			name:    "no commit, latest: a figure even without the log start",
			rules:   lagRules{window: 10, samples: 60, reset: ResetLatest},
			fetches: []fetched{fetchAt(0, read(0, 50, -1))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 50, Committed: -1, Lag: 0, LagSeconds: 0, LagBasis: LagNoCommit},
			}, maxPart: 0, inMemory: 1},
		},

		// Rates.
		{
			name:    "rates from consecutive fetches",
			fetches: []fetched{fetchAt(0, read(0, 10, 5)), fetchAt(2, read(0, 40, 25))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 40, Committed: 25, Lag: 15, LagSeconds: 1, ProduceRate: 15, ConsumeRate: 10, LagBasis: LagCommitted},
			}, total: 15, maxLag: 15, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no rate across a log that went backwards (topic recreated)",
			fetches: []fetched{fetchAt(0, read(0, 100, 50)), fetchAt(2, read(0, 10, 5))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 5, Lag: 5, LagSeconds: -1, LagBasis: LagCommitted},
			}, total: 5, maxLag: 5, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no consume rate across a commit reset backwards",
			fetches: []fetched{fetchAt(0, read(0, 100, 90)), fetchAt(2, read(0, 120, 20))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 120, Committed: 20, Lag: 100, LagSeconds: 2 + 80.0/10, ProduceRate: 10, LagBasis: LagCommitted},
			}, total: 100, maxLag: 100, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no consume rate from a commit that was missing last time",
			fetches: []fetched{fetchAt(0, read(0, 10, -1)), fetchAt(2, read(0, 30, 20))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 30, Committed: 20, Lag: 10, LagSeconds: 1, ProduceRate: 10, LagBasis: LagCommitted},
			}, total: 10, maxLag: 10, maxPart: 0, inMemory: 1},
		},
		{
			name:    "no rate between fetches at the same instant",
			fetches: []fetched{fetchAt(5, read(0, 10, 5)), fetchAt(5, read(0, 40, 5))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 40, Committed: 5, Lag: 35, LagSeconds: -1, LagBasis: LagCommitted},
			}, total: 35, maxLag: 35, maxPart: 0, inMemory: 1},
		},

		// Lag in seconds, interpolated from the log ends seen.
		{
			name:    "lag seconds: one log-end sample is not enough",
			fetches: []fetched{fetchAt(0, read(0, 100, 50))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 100, Committed: 50, Lag: 50, LagSeconds: -1, LagBasis: LagCommitted},
			}, total: 50, maxLag: 50, maxPart: 0, inMemory: 1},
		},
		{
			name:    "lag seconds: commit at the latest log end is 0",
			fetches: []fetched{fetchAt(0, read(0, 100, 40)), fetchAt(10, read(0, 200, 200))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 200, Lag: 0, LagSeconds: 0, ProduceRate: 10, ConsumeRate: 16, LagBasis: LagCommitted},
			}, maxPart: 0, inMemory: 1},
		},
		{
			// The log end was 100 at t=0 and 200 at t=10: record 150 was
			// written at t=5, so at t=10 the group is 5 s behind.
			name:    "lag seconds: interpolated between two samples",
			fetches: []fetched{fetchAt(0, read(0, 100, 100)), fetchAt(10, read(0, 200, 150))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 150, Lag: 50, LagSeconds: 5, ProduceRate: 10, ConsumeRate: 5, LagBasis: LagCommitted},
			}, total: 50, maxLag: 50, maxPart: 0, inMemory: 1},
		},
		{
			// 10 records/s over the window put record 50 at t=-5.
			name:    "lag seconds: a commit older than the samples is extrapolated",
			fetches: []fetched{fetchAt(0, read(0, 100, 50)), fetchAt(10, read(0, 200, 50))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 50, Lag: 150, LagSeconds: 15, ProduceRate: 10, LagBasis: LagCommitted},
			}, total: 150, maxLag: 150, maxPart: 0, inMemory: 1},
		},
		{
			name:    "lag seconds: a log end that never moved gives no rate to extrapolate",
			fetches: []fetched{fetchAt(0, read(0, 100, 50)), fetchAt(10, read(0, 100, 50))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 100, Committed: 50, Lag: 50, LagSeconds: -1, LagBasis: LagCommitted},
			}, total: 50, maxLag: 50, maxPart: 0, inMemory: 1},
		},
		{
			name:    "lag seconds: samples are per partition",
			fetches: []fetched{fetchAt(0, read(0, 100, 100), read(1, 0, 0)), fetchAt(10, read(0, 200, 150), read(1, 20, 10))},
			want: want{parts: []PartitionLag{
				{Partition: 0, LogStart: -1, HighWatermark: 200, Committed: 150, Lag: 50, LagSeconds: 5, ProduceRate: 10, ConsumeRate: 5, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 20, Committed: 10, Lag: 10, LagSeconds: 5, ProduceRate: 2, ConsumeRate: 1, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: 4, HighWatermark: 10, Committed: 6, Lag: 4, LagSeconds: -1, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: 7, HighWatermark: 10, Committed: 10, Lag: 0, LagSeconds: 0, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 30, Committed: 5, Lag: 25, LagSeconds: 2 + 5.0/10, ProduceRate: 10, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 5, Lag: 5, LagSeconds: -1, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 30, Committed: 25, Lag: 5, LagSeconds: -1, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 11, Committed: 5, Lag: 6, LagSeconds: 1 + 5, ProduceRate: 1, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 12, Committed: 5, Lag: 7, LagSeconds: 2 + 5, ProduceRate: 1, Status: StatusStop, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 12, Committed: 5, Lag: 7, LagSeconds: 2 + 5, ProduceRate: 1, Member: "w", Status: StatusStall, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", Status: StatusWarn, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 9, Lag: 5, LagSeconds: 2 + 0.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 20, Committed: 8, Lag: 12, LagSeconds: -1, Member: "w", Status: StatusRewind, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 10, Committed: 10, Lag: 0, LagSeconds: 0, ConsumeRate: 5, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 18, Committed: 14, Lag: 4, LagSeconds: 1, ProduceRate: 4, ConsumeRate: 2, Member: "w", LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 16, Committed: 10, Lag: 6, LagSeconds: 3, ProduceRate: 2, Member: "w", Status: StatusStall, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 13, Committed: 5, Lag: 8, LagSeconds: 3 + 5, ProduceRate: 1, LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", Status: StatusWarn, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 10, Committed: 10, Lag: 0, LagSeconds: 0, Member: "w", LagBasis: LagCommitted},
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
				{Partition: 0, LogStart: -1, HighWatermark: 14, Committed: 7, Lag: 7, LagSeconds: 2 + 1.5, ProduceRate: 2, ConsumeRate: 1, Member: "w", Status: StatusWarn, LagBasis: LagCommitted},
				{Partition: 1, LogStart: -1, HighWatermark: 12, Committed: 5, Lag: 7, LagSeconds: 2 + 5, ProduceRate: 1, Status: StatusStop, LagBasis: LagCommitted},
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
			var committed int64
			for _, p := range w.parts {
				if p.LagBasis == LagCommitted {
					committed += p.Lag
				}
			}
			if s.CommittedLag != committed {
				t.Errorf("committed lag %d, want %d (the committed partitions' lag)", s.CommittedLag, committed)
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
// read `inferops status --json`. Fields are only ever added.
func TestDeriveJSON(t *testing.T) {
	var st lagState
	r := lagRules{window: 10, samples: 60}
	_, st = derive(r, st, fetchAt(0, read(0, 100, 100).logStartAt(0).ownedBy("w"), read(1, 7, -1).logStartAt(2), read(2, 5, 5).noLeader()))
	s, _ := derive(r, st, fetchAt(10, read(0, 200, 150).ownedBy("w"), read(1, 9, -1), read(2, unread, 5).noLeader()))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"2026-01-01T00:00:10Z","topic":"t","group":"g","group_state":"Stable","status":"ERR",` +
		`"total_lag":57,"max_lag_partition":0,"max_lag":50,"partitions":[` +
		`{"partition":0,"leader":0,"log_start":0,"high_watermark":200,"committed":150,"lag":50,"lag_seconds":5,"produce_rate":10,"consume_rate":5,"member":"w","status":"OK","lag_basis":"committed"},` +
		`{"partition":1,"leader":0,"log_start":2,"high_watermark":9,"committed":null,"lag":7,"lag_seconds":35,"produce_rate":0.2,"consume_rate":0,"member":"","status":"STOP","lag_basis":"no_commit"},` +
		`{"partition":2,"leader":-1,"log_start":-1,"high_watermark":-1,"committed":5,"lag":null,"lag_seconds":null,"produce_rate":0,"consume_rate":0,"member":"","status":"OK","lag_basis":"unknown"}],` +
		`"members":[{"member_id":"w-1","client_id":"w","host":"/10.0.0.1","partitions":[0]}],` +
		`"brokers":1,"refresh_took_ns":0,"requests":3,` +
		`"committed_lag":50,"reset_policy":"earliest","rebalance":null,"warnings":[` +
		`{"code":"no_commit","message":"1 partition of t without a committed offset: their 7 records (log start to log end, auto.offset.reset=earliest) are counted as lag until the group commits there"},` +
		`{"code":"lag_unknown","message":"partition 2 of t without a lag figure (leader unknown, or no commit and the log start not read): the totals leave them out, so they are a floor"}]}`
	if string(b) != want {
		t.Errorf("json:\n got %s\nwant %s", b, want)
	}
}

// TestDeriveWarnings: the one-line truths a snapshot carries, and the
// status of a group that does not exist.
func TestDeriveWarnings(t *testing.T) {
	dead := func(f fetched) fetched { f.GroupState = "Dead"; return f }
	with := func(f fetched, o *otherGroups) fetched { f.Others = o; return f }
	tests := []struct {
		name   string
		rules  lagRules
		fetch  fetched
		status Status
		codes  []string
		has    []string // substrings of the messages, in order of codes
	}{
		{
			name:   "healthy: no warnings, an empty list",
			fetch:  fetchAt(0, read(0, 10, 10).logStartAt(0).ownedBy("w")),
			status: StatusOK,
			codes:  []string{},
		},
		{
			name: "a group that does not exist, records waiting: NOTFOUND and the groups that do commit on the topic",
			fetch: with(dead(fetchAt(0, read(0, 20, -1).logStartAt(0), read(1, 17264, -1).logStartAt(0))),
				&otherGroups{OnTopic: []string{"tf_serving_group"}, All: []string{"other", "tf_serving_group"}, Checked: 2}),
			status: StatusNotFound,
			codes:  []string{WarnGroupNotFound},
			has:    []string{`group "g" does not exist (no members, no committed offset on t; 17,284 records wait on t); groups with commits on t: tf_serving_group (set --group)`},
		},
		{
			name:   "a group that does not exist on an empty topic: still NOTFOUND, never OK",
			fetch:  with(dead(fetchAt(0, read(0, 0, -1).logStartAt(0))), &otherGroups{All: []string{}}),
			status: StatusNotFound,
			codes:  []string{WarnGroupNotFound},
			has:    []string{"nothing waits on t); the cluster has no consumer groups at all"},
		},
		{
			name:   "no group commits on the topic: the cluster's groups are listed",
			fetch:  with(dead(fetchAt(0, read(0, 5, -1).logStartAt(0))), &otherGroups{OnTopic: []string{}, All: []string{"a", "b"}, Checked: 2}),
			status: StatusNotFound,
			codes:  []string{WarnGroupNotFound},
			has:    []string{"no group has commits on t; the cluster's groups: a, b (check --group and --input)"},
		},
		{
			name:   "the lookup failed: says why",
			fetch:  with(dead(fetchAt(0, read(0, 5, -1).logStartAt(0))), &otherGroups{Err: "list groups on broker 0: EOF"}),
			status: StatusNotFound,
			codes:  []string{WarnGroupNotFound},
			has:    []string{"could not list the other groups (list groups on broker 0: EOF)"},
		},
		{
			name:   "Empty with commits and records waiting: one line says nothing consumes them",
			fetch:  fetchAt(0, read(0, 20, 4).logStartAt(0), read(1, 10, 10).logStartAt(0)),
			status: StatusOK, // Burrow's window is not full yet: the warning is what tells
			codes:  []string{WarnNoConsumer},
			has:    []string{"group g is Empty: nothing consumes the 16 records waiting on t (start the workers"},
		},
		{
			name:   "Empty, caught up: nothing to say",
			fetch:  fetchAt(0, read(0, 10, 10).logStartAt(0)),
			status: StatusOK,
			codes:  []string{},
		},
		{
			name:   "Empty with backlog where it never committed: the same one line, with the partitions",
			fetch:  fetchAt(0, read(0, 20, 4).logStartAt(0), read(1, 30, -1).logStartAt(0), read(2, 30, -1).logStartAt(10)),
			status: StatusErr,
			codes:  []string{WarnNoConsumer},
			has:    []string{"group g is Empty: nothing consumes the 66 records waiting on t (2 partitions without a committed offset) (start the workers"},
		},
		{
			name:   "Empty and never committed on the topic: a typo in --input or --group?",
			fetch:  with(fetchAt(0, read(0, 0, -1).logStartAt(0)), &otherGroups{OnTopic: []string{"real"}, All: []string{"g", "real"}, Checked: 1}),
			status: StatusOK,
			codes:  []string{WarnNoConsumer},
			has:    []string{"group g has no members and no committed offset on t; groups with commits on t: real (set --group)"},
		},
		{
			name:   "members, but partitions without a commit hold records",
			fetch:  fetchAt(0, read(0, 20, 20).logStartAt(0).ownedBy("w"), read(1, 17264, -1).logStartAt(0).ownedBy("w")),
			status: StatusWarn,
			codes:  []string{WarnNoCommit},
			has:    []string{"1 partition of t without a committed offset: their 17,264 records (log start to log end, auto.offset.reset=earliest) are counted as lag"},
		},
		{
			name:   "latest: the records already there will never be read",
			rules:  lagRules{window: 10, samples: 60, reset: ResetLatest},
			fetch:  fetchAt(0, read(0, 20, 20).logStartAt(0).ownedBy("w"), read(1, 30, -1).logStartAt(5).ownedBy("w"), read(2, 8, -1).logStartAt(0).ownedBy("w")),
			status: StatusOK,
			codes:  []string{WarnResetLatest},
			has:    []string{"partitions 1-2 of t without a committed offset: with auto.offset.reset=latest the group starts at the log end, so the 33 records already there will never be read by g (counted as lag 0)"},
		},
		{
			name:   "partitions without a figure: the totals are a floor",
			fetch:  fetchAt(0, read(0, 20, 20).logStartAt(0).ownedBy("w"), read(1, unread, 4).noLeader().ownedBy("w"), read(2, 9, -1).ownedBy("w")),
			status: StatusOK,
			codes:  []string{WarnLagUnknown},
			has:    []string{"partitions 1-2 of t without a lag figure"},
		},
		{
			name:   "several at once, most severe first",
			fetch:  fetchAt(0, read(0, 20, 4).logStartAt(0), read(1, 30, -1).logStartAt(0), read(2, unread, -1).noLeader()),
			status: StatusErr,
			codes:  []string{WarnNoConsumer, WarnLagUnknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rules
			if r.window == 0 {
				r = lagRules{window: 10, samples: 60}
			}
			s, _ := derive(r, lagState{}, tt.fetch)
			if s.Status != tt.status {
				t.Errorf("status %v, want %v", s.Status, tt.status)
			}
			codes := []string{}
			for _, w := range s.Warnings {
				codes = append(codes, w.Code)
			}
			if !reflect.DeepEqual(codes, tt.codes) {
				t.Fatalf("warnings %+v, want codes %v", s.Warnings, tt.codes)
			}
			for i, h := range tt.has {
				if !strings.Contains(s.Warnings[i].Message, h) {
					t.Errorf("warning %s:\n %s\nlacks\n %s", s.Warnings[i].Code, s.Warnings[i].Message, h)
				}
			}
			if b, _ := json.Marshal(s); !strings.Contains(string(b), `"warnings":[`) {
				t.Errorf("warnings not a JSON list: %s", b)
			}
		})
	}
}

// TestDeriveRebalance: how long a group has been rebalancing, as far as a
// poller can know, and whom it waits for.
func TestDeriveRebalance(t *testing.T) {
	a := Member{MemberID: "a-1", ClientID: "worker-a", Host: "/10.0.0.1", Partitions: []int32{0}}
	b := Member{MemberID: "b-1", ClientID: "worker-b", Host: "/10.0.0.2", Partitions: []int32{}}
	state := func(sec float64, st string, ms ...Member) fetched {
		f := fetchAt(sec, read(0, 10, 10).logStartAt(0))
		f.GroupState, f.Members = st, append([]Member{}, ms...)
		if st != "Stable" { // assignments are described in Stable only
			for i := range f.Members {
				f.Members[i].Partitions = []int32{}
			}
		}
		return f
	}
	type want struct {
		state        string
		seconds      float64
		atLeast      bool
		awaited      []string // client ids
		awaitedKnown bool
		members      int
		warning      string // substring of the rebalancing warning; "" = none
	}
	tests := []struct {
		name    string
		fetches []fetched
		want    *want // of the last snapshot; nil = not rebalancing
	}{
		{
			name:    "a short rebalance: shown, no warning yet",
			fetches: []fetched{state(0, "Stable", a), state(1, "PreparingRebalance", a, b), state(3, "PreparingRebalance", a, b)},
			want:    &want{state: "PreparingRebalance", seconds: 2, awaited: []string{"worker-a"}, awaitedKnown: true, members: 2},
		},
		{
			name: "a dead member holds it up: the members from before are awaited, the new one is not",
			fetches: []fetched{state(0, "Stable", a), state(1, "PreparingRebalance", a, b), state(3, "PreparingRebalance", a, b),
				state(7, "PreparingRebalance", a, b)},
			want: &want{state: "PreparingRebalance", seconds: 6, awaited: []string{"worker-a"}, awaitedKnown: true, members: 2,
				warning: "group g has been rebalancing for 6s (PreparingRebalance), waiting for 1 of 2 members to rejoin: worker-a on /10.0.0.1; nobody consumes until it ends"},
		},
		{
			name:    "already rebalancing at the first look: at least, and every member held",
			fetches: []fetched{state(0, "PreparingRebalance", a, b), state(2, "PreparingRebalance", a, b)},
			want: &want{state: "PreparingRebalance", seconds: 2, atLeast: true, awaited: []string{"worker-a", "worker-b"}, members: 2,
				warning: "group g has been rebalancing for at least 2s (PreparingRebalance), the 2 members it holds must each rejoin: worker-a on /10.0.0.1, worker-b on /10.0.0.2; nobody consumes until it ends"},
		},
		{
			name:    "Preparing then Completing is one rebalance: the time runs from the first",
			fetches: []fetched{state(0, "Stable", a), state(1, "PreparingRebalance", a, b), state(9, "CompletingRebalance", a, b)},
			want: &want{state: "CompletingRebalance", seconds: 8, awaited: []string{"worker-a"}, awaitedKnown: true, members: 2,
				warning: "has been rebalancing for 8s (CompletingRebalance)"},
		},
		{
			name:    "over when Stable",
			fetches: []fetched{state(0, "Stable", a), state(1, "PreparingRebalance", a, b), state(9, "Stable", a, b)},
		},
		{
			name:    "a new rebalance starts its own clock",
			fetches: []fetched{state(0, "Stable", a), state(1, "PreparingRebalance", a, b), state(9, "Stable", a, b), state(20, "PreparingRebalance", a, b), state(21, "PreparingRebalance", a, b)},
			want:    &want{state: "PreparingRebalance", seconds: 1, awaited: []string{"worker-a", "worker-b"}, awaitedKnown: true, members: 2},
		},
		{
			name: "from Empty: nobody from before to wait for",
			fetches: []fetched{func() fetched { f := state(0, "Empty"); return f }(), state(1, "PreparingRebalance", b),
				state(7, "PreparingRebalance", b)},
			want: &want{state: "PreparingRebalance", seconds: 6, awaited: []string{}, awaitedKnown: true, members: 1,
				warning: "no member from before it is left to rejoin (1 member, all new; the coordinator may be waiting out group.initial.rebalance.delay.ms)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				st     lagState
				s      *Snapshot
				snaps  []*Snapshot
				frozen []string
			)
			for _, f := range tt.fetches {
				s, st = derive(lagRules{window: 10, samples: 60}, st, f)
				b, _ := json.Marshal(s)
				snaps, frozen = append(snaps, s), append(frozen, string(b))
			}
			for i, s := range snaps {
				if b, _ := json.Marshal(s); string(b) != frozen[i] {
					t.Errorf("snapshot %d changed after later derives:\n was %s\n now %s", i, frozen[i], b)
				}
			}
			var warning string
			for _, w := range s.Warnings {
				if w.Code == WarnRebalancing {
					warning = w.Message
				}
			}
			if tt.want == nil {
				if s.Rebalance != nil || warning != "" {
					t.Errorf("rebalance %+v warning %q, want none", s.Rebalance, warning)
				}
				return
			}
			rb, w := s.Rebalance, tt.want
			if rb == nil {
				t.Fatalf("no rebalance in the snapshot, want %+v", w)
			}
			awaited := []string{}
			for _, m := range rb.Awaited {
				awaited = append(awaited, m.ClientID)
			}
			if rb.State != w.state || rb.Seconds != w.seconds || rb.AtLeast != w.atLeast || !reflect.DeepEqual(awaited, w.awaited) ||
				rb.AwaitedKnown != w.awaitedKnown || rb.Members != w.members {
				t.Errorf("rebalance = %+v (awaited %v), want %+v", rb, awaited, w)
			}
			if !rb.Since.Equal(s.Time.Add(-time.Duration(w.seconds * float64(time.Second)))) {
				t.Errorf("since %v, want %v before %v", rb.Since, w.seconds, s.Time)
			}
			if !strings.Contains(warning, w.warning) || (w.warning == "") != (warning == "") {
				t.Errorf("rebalancing warning %q, want one with %q", warning, w.warning)
			}
		})
	}
}

func TestPartitionRanges(t *testing.T) {
	for _, tt := range []struct {
		in   []int32
		want string
	}{
		{nil, "-"},
		{[]int32{4}, "4"},
		{[]int32{0, 1, 2, 3}, "0-3"},
		{[]int32{0, 1, 2, 3, 7, 9, 10}, "0-3,7,9-10"},
	} {
		if got := PartitionRanges(tt.in); got != tt.want {
			t.Errorf("PartitionRanges(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParsePartitionList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		err  bool
	}{
		{in: "0", want: "0"}, {in: "3,0,5-7", want: "0,3,5-7"}, {in: " 1 , 1, 2-3 ", want: "1-3"},
		{in: "", err: true}, {in: "-1", err: true}, {in: "7-5", err: true}, {in: "a", err: true}, {in: "0-99999999", err: true},
	} {
		got, err := ParsePartitionList(tt.in)
		if (err != nil) != tt.err || (err == nil && PartitionRanges(got) != tt.want) {
			t.Errorf("ParsePartitionList(%q) = %v, %v; want %s (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// FuzzParsePartitionList: what it accepts, PartitionRanges writes back to
// a list that parses to the same partitions.
func FuzzParsePartitionList(f *testing.F) {
	for _, s := range []string{"0", "0,3,5-7", "1-1", "2-", "-", ",,", "99999-100000", "0x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParsePartitionList(s)
		if err != nil {
			return
		}
		again, err := ParsePartitionList(PartitionRanges(ps))
		if err != nil || PartitionRanges(again) != PartitionRanges(ps) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, ps, PartitionRanges(ps), again, err)
		}
	})
}
