package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
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

	// Others is what the collector found out about the cluster's other
	// groups when this one has no members and no commit on the topic (nil
	// when it did not look): the fix for a mistyped --group.
	Others *otherGroups

	Requests int // Kafka requests the fetch sent
}

// otherGroups answers "which group did you mean?".
type otherGroups struct {
	OnTopic []string // groups with a commit on the topic, sorted
	All     []string // every consumer group of the cluster, sorted
	Checked int      // groups whose commits were read: all but ours, at most maxGroupsChecked
	Err     string   // the lookup failed: why
}

// lagRules are the settings derive applies, fixed for a Collector's life.
type lagRules struct {
	window     int         // Burrow's intervals: observations before a partition can be anything but OK
	allowedLag int64       // the lag Burrow's rules tolerate
	samples    int         // log-end samples per partition kept for lag in seconds
	reset      ResetPolicy // where a consumer without a commit starts
}

// lagState is what derive remembers between refreshes. Its zero value is
// the state before the first refresh. Like append, derive reuses the state
// it is given (copying 60 samples for each of 10,000 partitions every tick
// would cost more than the refresh): keep only the state it returns.
type lagState struct {
	parts map[int32]*partState
	gen   uint64 // counts derives, to drop partitions a fetch no longer lists

	stable    []Member // the members at the last Stable look
	rebalance *Rebalance
	before    map[string]bool // member ids at the last Stable look before this rebalance; nil = never seen Stable
}

type partState struct {
	gen        uint64 // the derive that last saw this partition
	table      *lagTable
	window     []commitEntry
	logStart   int64 // the last log start read; they are re-read only now and then
	prevTime   time.Time
	prevHWM    int64
	prevCommit int64
	// waiting counts consecutive observations of this partition owned by a
	// member, without a commit, with records waiting.
	waiting int
}

// rebalanceWarnAfter is how long a rebalance runs before it becomes a
// Warning. A healthy one takes a second or two (the embedded broker ~1 s);
// one still going after this is waiting for someone. A rebalance already
// under way at the first look warns at once: its length is unknown.
const rebalanceWarnAfter = 5 * time.Second

// derive turns one fetch into a Snapshot, given the state the previous
// derive returned, and returns the next state. It reads no clock (time is
// f.Time) and does no I/O, so every lag rule can be table-tested without a
// broker. RefreshTook and the exact lag times are the caller's.
func derive(r lagRules, prev lagState, f fetched) (*Snapshot, lagState) {
	st := prev
	if st.parts == nil {
		st.parts = make(map[int32]*partState, len(f.Partitions))
	}
	if r.reset == "" {
		r.reset = ResetEarliest
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
		ResetPolicy:     r.reset,
		Warnings:        []Warning{},
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
		if pl.LagBasis == LagCommitted {
			snap.CommittedLag += pl.Lag
		}
		if pl.Lag > snap.MaxLag || snap.MaxLagPartition < 0 {
			snap.MaxLag, snap.MaxLagPartition = pl.Lag, pl.Partition
		}
	}
	snap.Status = groupStatus(snap.Partitions)
	st.trackRebalance(snap, st.gen == 1)
	if groupNotFound(snap) {
		// Nothing to be OK about: a mistyped --group reads the topic as a
		// group that exists and has never fallen behind.
		snap.Status = StatusNotFound
	}
	snap.Warnings = warnings(r, snap, f.Others)
	return snap, st
}

// trackRebalance remembers when the group started rebalancing and who was
// in it before, and sets snap.Rebalance while it lasts.
func (st *lagState) trackRebalance(snap *Snapshot, firstLook bool) {
	switch snap.GroupState {
	case "PreparingRebalance", "CompletingRebalance":
	default:
		st.rebalance, st.before = nil, nil
		if snap.GroupState == "Stable" {
			st.stable = snap.Members
		} else {
			st.stable = nil // Empty or Dead: nobody from before is awaited
		}
		return
	}
	if st.rebalance == nil {
		st.rebalance = &Rebalance{Since: snap.Time, AtLeast: firstLook}
		if !firstLook {
			st.before = map[string]bool{}
			for _, m := range st.stable {
				st.before[m.MemberID] = true
			}
		}
	}
	rb := *st.rebalance // a copy per snapshot: snapshots are immutable
	rb.State = snap.GroupState
	rb.Seconds = max(snap.Time.Sub(rb.Since).Seconds(), 0)
	rb.Members = len(snap.Members)
	rb.AwaitedKnown = st.before != nil
	rb.Awaited = []Member{}
	for _, m := range snap.Members {
		if st.before == nil || st.before[m.MemberID] {
			rb.Awaited = append(rb.Awaited, m)
		}
	}
	snap.Rebalance = &rb
}

// groupNotFound: the coordinator does not know the group and it never
// committed on the topic. (A group whose members all left stays Empty
// with its commits; Dead is a group that is not there.)
func groupNotFound(s *Snapshot) bool {
	if s.GroupState != "Dead" || len(s.Members) > 0 {
		return false
	}
	for _, p := range s.Partitions {
		if p.Committed >= 0 {
			return false
		}
	}
	return true
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
	pl := PartitionLag{Partition: p, Leader: leader, LogStart: ps.logStart, HighWatermark: -1, Committed: -1, Lag: -1, LagSeconds: -1, Member: owner, LagBasis: LagUnknown}
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
	noCommitStatus := StatusOK
	switch {
	case pl.Committed >= 0 && haveHWM:
		pl.LagBasis = LagCommitted
		pl.Lag = max(hwm-pl.Committed, 0) // offsets read in parallel race: floor at 0
		pl.LagSeconds = ps.table.lagSeconds(pl.Committed, now)
		ps.window = append(ps.window, commitEntry{Time: now, Offset: pl.Committed, Lag: pl.Lag})
		if len(ps.window) > r.window {
			ps.window = append(ps.window[:0], ps.window[len(ps.window)-r.window:]...)
		}
		ps.waiting = 0
	case pl.Committed < 0:
		// No commit. A window from earlier commits (since deleted or
		// expired) no longer describes this consumer.
		ps.window = ps.window[:0]
		// The no-commit rule. The group has not read these records, and
		// the first consumer to get the partition starts where the reset
		// policy says: with earliest (the worker's) at the log start, so
		// every record in it is backlog; with latest at the log end, so
		// there is no lag, but the records there are never read (a Warning
		// says so). Showing "-" here and counting 0 in the totals is how a
		// 60,000-record backlog once read "lag 0, OK".
		if haveHWM && (r.reset == ResetLatest || pl.LogStart >= 0) {
			pl.LagBasis = LagNoCommit
			pl.Lag = 0
			pos := hwm
			if r.reset == ResetEarliest {
				pl.Lag = max(hwm-pl.LogStart, 0)
				pos = pl.LogStart
			}
			pl.LagSeconds = ps.table.lagSeconds(pos, now)
			// Status, without Burrow's window (there are no commits to put
			// in it): no commit means no progress, so records waiting are
			// never OK.
			//   - Nobody owns the partition: STOP at once. No consumer
			//     holds it, none ever committed, and nothing is about to:
			//     one look is all the evidence there is to have.
			//   - A member owns it: WARN (not proven to progress) until
			//     it has held it for a whole window without committing,
			//     then STALL. A member that just got it needs a moment
			//     for its first commit (the worker commits every second),
			//     so one look is not yet a verdict.
			switch {
			case pl.Lag <= r.allowedLag:
				ps.waiting = 0
			case owner == "":
				ps.waiting = 0
				noCommitStatus = StatusStop
			default:
				ps.waiting++
				noCommitStatus = StatusWarn
				if ps.waiting >= r.window {
					noCommitStatus = StatusStall
				}
			}
		}
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
	if pl.Committed < 0 {
		pl.Status = noCommitStatus
	} else {
		pl.Status = evaluatePartition(ps.window, pl.Member != "", r.allowedLag, r.window)
	}
	return pl
}

// warnings are the snapshot's one-line truths, most severe first.
func warnings(r lagRules, s *Snapshot, others *otherGroups) []Warning {
	out := []Warning{}
	add := func(code, format string, a ...any) {
		out = append(out, Warning{Code: code, Message: fmt.Sprintf(format, a...)})
	}
	var (
		noCommit, noCommitLag int64 // partitions without a commit holding records, and their records
		unread, unknown       []int32
		committed             bool
		waiting               = s.TotalLag
	)
	for _, p := range s.Partitions {
		committed = committed || p.Committed >= 0
		switch {
		case p.LagBasis == LagUnknown:
			unknown = append(unknown, p.Partition)
		case p.LagBasis == LagNoCommit && p.HighWatermark > p.LogStart && p.LogStart >= 0:
			noCommit++
			noCommitLag += p.HighWatermark - p.LogStart
			if r.reset == ResetLatest {
				unread = append(unread, p.Partition)
			}
		}
	}
	hint := others.hint(s.Topic)
	switch {
	case s.Status == StatusNotFound:
		what := "nothing waits on " + s.Topic
		if waiting > 0 {
			what = fmt.Sprintf("%s records wait on %s", thousands(waiting), s.Topic)
		}
		add(WarnGroupNotFound, "group %q does not exist (no members, no committed offset on %s; %s)%s", s.Group, s.Topic, what, hint)
	case len(s.Members) == 0 && waiting > 0:
		state := s.GroupState
		if state == "" {
			state = "not described"
		}
		add(WarnNoConsumer, "group %s is %s: nothing consumes the %s records waiting on %s%s (start the workers: inferops worker, or systemctl start inferops-worker)%s",
			s.Group, state, thousands(waiting), s.Topic, noCommitNote(noCommit, r.reset), hint)
	case len(s.Members) == 0 && !committed:
		// Exists, but has never been near this topic: --input or --group?
		add(WarnNoConsumer, "group %s has no members and no committed offset on %s%s", s.Group, s.Topic, hint)
	}
	if rb := s.Rebalance; rb != nil && (rb.AtLeast || rb.Seconds >= rebalanceWarnAfter.Seconds()) {
		add(WarnRebalancing, "group %s has been %s (%s), %s; nobody consumes until it ends", s.Group, rebalanceFor(rb), rb.State, awaitedText(rb))
	}
	if noCommit > 0 && r.reset == ResetEarliest && len(s.Members) > 0 {
		add(WarnNoCommit, "%s of %s without a committed offset: their %s records (log start to log end, auto.offset.reset=earliest) are counted as lag until the group commits there",
			plural(noCommit, "partition"), s.Topic, thousands(noCommitLag))
	}
	if len(unread) > 0 {
		add(WarnResetLatest, "%s of %s without a committed offset: with auto.offset.reset=latest the group starts at the log end, so the %s records already there will never be read by %s (counted as lag 0)",
			partitionsNamed(unread), s.Topic, thousands(noCommitLag), s.Group)
	}
	if len(unknown) > 0 {
		add(WarnLagUnknown, "%s of %s without a lag figure (leader unknown, or no commit and the log start not read): the totals leave them out, so they are a floor",
			partitionsNamed(unknown), s.Topic)
	}
	return out
}

func noCommitNote(n int64, reset ResetPolicy) string {
	if n == 0 || reset != ResetEarliest {
		return ""
	}
	return fmt.Sprintf(" (%s without a committed offset)", plural(n, "partition"))
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return thousands(n) + " " + word + "s"
}

// rebalanceFor is "rebalancing for 42s" or "rebalancing for at least 42s".
func rebalanceFor(rb *Rebalance) string {
	d := (time.Duration(rb.Seconds * float64(time.Second))).Round(time.Second)
	if rb.AtLeast {
		return "rebalancing for at least " + d.String()
	}
	return "rebalancing for " + d.String()
}

// awaitedText names the members a rebalance waits for.
func awaitedText(rb *Rebalance) string {
	names := make([]string, 0, len(rb.Awaited))
	for _, m := range rb.Awaited {
		names = append(names, MemberName(m))
	}
	switch {
	case !rb.AwaitedKnown:
		return fmt.Sprintf("the %s it holds must each rejoin: %s", plural(int64(rb.Members), "member"), strings.Join(names, ", "))
	case len(names) == 0:
		return fmt.Sprintf("no member from before it is left to rejoin (%s, all new; the coordinator may be waiting out group.initial.rebalance.delay.ms)", plural(int64(rb.Members), "member"))
	}
	return fmt.Sprintf("waiting for %d of %s to rejoin: %s", len(names), plural(int64(rb.Members), "member"), strings.Join(names, ", "))
}

// MemberName is how a member is named to an operator: client id and host,
// which is what finds the process ("worker-1 on /10.0.0.5").
func MemberName(m Member) string {
	name := m.ClientID
	if name == "" {
		name = m.MemberID
	}
	if m.Host != "" {
		name += " on " + m.Host
	}
	return name
}

// hint is the fix for a group with nothing on the topic: the groups that
// do have commits there.
func (o *otherGroups) hint(topic string) string {
	switch {
	case o == nil:
		return ""
	case o.Err != "":
		return fmt.Sprintf("; could not list the other groups (%s)", o.Err)
	case len(o.OnTopic) > 0:
		return fmt.Sprintf("; groups with commits on %s: %s (set --group)", topic, listSome(o.OnTopic, 10))
	case len(o.All) == 0:
		return "; the cluster has no consumer groups at all (are the workers running?)"
	}
	checked := ""
	if len(o.All) > maxGroupsChecked {
		checked = fmt.Sprintf(" (of the %d checked)", o.Checked)
	}
	return fmt.Sprintf("; no group has commits on %s%s; the cluster's groups: %s (check --group and --input)", topic, checked, listSome(o.All, 10))
}

func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// partitionsNamed is "partition 2" or "partitions 0-3,7".
func partitionsNamed(ps []int32) string {
	if len(ps) == 1 {
		return "partition " + strconv.Itoa(int(ps[0]))
	}
	return "partitions " + PartitionRanges(ps)
}

// PartitionRanges prints sorted partitions 0,1,2,3,7 as "0-3,7", and none
// as "-".
func PartitionRanges(ps []int32) string {
	if len(ps) == 0 {
		return "-"
	}
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ps[i], ps[j]))
		} else {
			parts = append(parts, strconv.Itoa(int(ps[i])))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// thousands prints 17264 as 17,264: warnings are read, not parsed.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ParsePartitionList reads the partitions an operator lists, the way
// PartitionRanges writes them: "0,3,5-7". The result is sorted, without
// repeats.
func ParsePartitionList(s string) ([]int32, error) {
	seen := map[int32]bool{}
	var out []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("partition %q: want a number from 0, or a range such as 5-7", f)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 32); err != nil || b < a {
				return nil, fmt.Errorf("partition range %q: want low-high, e.g. 5-7", f)
			}
			if b-a >= 100_000 {
				return nil, fmt.Errorf("partition range %q: more partitions than any topic has", f)
			}
		}
		for p := a; p <= b; p++ {
			if !seen[int32(p)] {
				seen[int32(p)] = true
				out = append(out, int32(p))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no partitions in %q: want e.g. 0,3,5-7", s)
	}
	slices.Sort(out)
	return out, nil
}
