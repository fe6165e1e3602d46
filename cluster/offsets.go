package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// ResetKind is where an offset reset moves a group.
type ResetKind string

const (
	ResetToEarliest ResetKind = "earliest" // the log start
	ResetToLatest   ResetKind = "latest"   // the high watermark: skip everything waiting
	ResetToTime     ResetKind = "time"     // the first record at or after a time
	ResetToOffset   ResetKind = "offset"   // one offset on every partition
	ResetBack       ResetKind = "back"     // N records before the current position
)

// ResetTarget is one --to of `inferops offsets reset`.
type ResetTarget struct {
	Kind   ResetKind
	Time   time.Time // ResetToTime
	Offset int64     // ResetToOffset
	Back   int64     // ResetBack
}

// String is the target as the command line writes it.
func (t ResetTarget) String() string {
	switch t.Kind {
	case ResetToTime:
		return t.Time.Format(time.RFC3339Nano)
	case ResetToOffset:
		return strconv.FormatInt(t.Offset, 10)
	case ResetBack:
		return "-" + strconv.FormatInt(t.Back, 10)
	}
	return string(t.Kind)
}

// ParseResetTarget reads earliest, latest, a time (see ParseTime), an
// offset (a whole number) or -N (N records back).
func ParseResetTarget(s string, now time.Time) (ResetTarget, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "earliest", "oldest", "beginning":
		return ResetTarget{Kind: ResetToEarliest}, nil
	case "latest", "newest", "end":
		return ResetTarget{Kind: ResetToLatest}, nil
	case "":
		return ResetTarget{}, errors.New("--to is empty: want earliest, latest, a time (2024-05-01T10:00:00Z, now-1h), an offset, or -N")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return ResetTarget{Kind: ResetBack, Back: -n}, nil
		}
		return ResetTarget{Kind: ResetToOffset, Offset: n}, nil
	}
	t, err := ParseTime(s, now)
	if err != nil {
		return ResetTarget{}, fmt.Errorf("--to %q: want earliest, latest, a time (2024-05-01T10:00:00Z, 2024-05-01 10:00 local, now-1h), an offset (1234), or -N (N records back)", s)
	}
	return ResetTarget{Kind: ResetToTime, Time: t}, nil
}

// ParseTime reads a time the way operators write one: RFC 3339
// (2024-05-01T10:00:00Z, with an offset or fractions), a date and time
// without a zone in the local time zone (2024-05-01 10:00[:05], with T or
// a space), a date (its midnight, local), or now / now-DURATION
// (now-90m, now-1h30m).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "now-"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("time %q: after now- want a duration such as 90m or 1h30m", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2024-05-01T10:00:00Z), a local 2024-05-01 10:00, or now-1h", s)
}

// PartitionReset is one partition of a reset plan.
type PartitionReset struct {
	Partition     int32 `json:"partition"`
	LogStart      int64 `json:"log_start"`
	HighWatermark int64 `json:"high_watermark"`
	// Current is the group's commit, -1 when it has none (it then reads
	// from the log start: the worker's auto.offset.reset=earliest).
	Current   int64 `json:"current"`
	New       int64 `json:"new"`
	LagBefore int64 `json:"lag_before"`
	LagAfter  int64 `json:"lag_after"`
	// Skipped are the records from the current position to New that the
	// group will never read; Reread those it reads again.
	Skipped int64 `json:"skipped"`
	Reread  int64 `json:"reread"`
	// Note says why New is not what was asked: clamped to the log, no
	// record at or after the time.
	Note string `json:"note,omitempty"`
}

// position is where the group reads next on p today.
func (p PartitionReset) position() int64 {
	if p.Current < 0 {
		return p.LogStart
	}
	return p.Current
}

// ResetPlan is an offset reset worked out before anything changes.
type ResetPlan struct {
	Group      string           `json:"group"`
	Topic      string           `json:"topic"`
	To         string           `json:"to"`
	GroupState string           `json:"group_state"`
	Members    []Member         `json:"members"`
	Partitions []PartitionReset `json:"partitions"`
	Skipped    int64            `json:"skipped"`
	Reread     int64            `json:"reread"`
	LagBefore  int64            `json:"lag_before"`
	LagAfter   int64            `json:"lag_after"`
	Warnings   []string         `json:"warnings"`
	Time       time.Time        `json:"time"`
}

// Changes reports whether applying the plan moves any offset.
func (p *ResetPlan) Changes() bool {
	for _, r := range p.Partitions {
		if r.Current != r.New {
			return true
		}
	}
	return false
}

// ErrGroupHasMembers: Kafka moves a group's offsets from outside only
// while the group is empty.
var ErrGroupHasMembers = errors.New("the group has members")

// PlanReset works out moving the collector's group on its topic to `to`,
// on partitions (nil: all), from fresh offsets, without changing anything.
func (c *Collector) PlanReset(ctx context.Context, to ResetTarget, partitions []int32) (*ResetPlan, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	c.lastLogStart = time.Time{} // a plan needs today's log starts
	snap, err := c.refresh(ctx)
	if err != nil {
		return nil, err
	}
	plan := &ResetPlan{Group: c.group, Topic: c.topic, To: to.String(), GroupState: snap.GroupState, Members: snap.Members, Warnings: []string{}, Time: snap.Time}
	for _, w := range snap.Warnings {
		if w.Code == WarnGroupNotFound {
			plan.Warnings = append(plan.Warnings, w.Message)
		}
	}
	have := make([]int32, len(snap.Partitions))
	for i, p := range snap.Partitions {
		have[i] = p.Partition
	}
	for _, p := range partitions {
		if !slices.Contains(have, p) {
			return nil, fmt.Errorf("--partitions: %s has no partition %d (it has %d: 0-%d)", c.topic, p, len(have), len(have)-1)
		}
	}
	var tooOld []string
	for _, pl := range snap.Partitions {
		if partitions != nil && !slices.Contains(partitions, pl.Partition) {
			continue
		}
		if pl.LagBasis == LagUnknown {
			return nil, fmt.Errorf("%s/%d: its offsets could not be read (leader unavailable?); try again, or leave it out with --partitions", c.topic, pl.Partition)
		}
		r := PartitionReset{Partition: pl.Partition, LogStart: pl.LogStart, HighWatermark: pl.HighWatermark, Current: pl.Committed}
		switch to.Kind {
		case ResetToEarliest:
			r.New = r.LogStart
		case ResetToLatest:
			r.New = r.HighWatermark
		case ResetToOffset:
			r.New = to.Offset
		case ResetBack:
			r.New = r.position() - to.Back
		case ResetToTime:
			off, ts, err := listOffset(c.client, c.cfg, c.topic, pl.Partition, to.Time.UnixMilli())
			if err != nil {
				return nil, err
			}
			switch {
			case off < 0:
				r.New, r.Note = r.HighWatermark, "no record at or after the time: the end"
			case off <= r.LogStart && r.LogStart > 0 && ts > to.Time.UnixMilli():
				tooOld = append(tooOld, fmt.Sprintf("%d (oldest record kept: offset %d at %s)", pl.Partition, r.LogStart, time.UnixMilli(ts).UTC().Format(time.RFC3339)))
			default:
				r.New = off
			}
		default:
			return nil, fmt.Errorf("unknown reset target %q", to.Kind)
		}
		switch {
		case r.New < r.LogStart:
			r.New, r.Note = r.LogStart, fmt.Sprintf("asked %s: below the log start, so the log start", to)
			if to.Kind == ResetBack {
				r.Note = fmt.Sprintf("fewer than %d records back: the log start", to.Back)
			}
		case r.New > r.HighWatermark:
			r.New, r.Note = r.HighWatermark, fmt.Sprintf("asked %s: past the end, so the end", to)
		}
		pos := r.position()
		r.LagBefore, r.LagAfter = r.HighWatermark-pos, r.HighWatermark-r.New
		if r.New > pos {
			r.Skipped = r.New - pos
		} else {
			r.Reread = pos - r.New
		}
		plan.Skipped += r.Skipped
		plan.Reread += r.Reread
		plan.LagBefore += r.LagBefore
		plan.LagAfter += r.LagAfter
		plan.Partitions = append(plan.Partitions, r)
	}
	if len(tooOld) > 0 {
		return nil, fmt.Errorf("--to %s is before the log start of %s partition %s: the records from then were deleted by retention, so no offset holds them; use --to earliest to start at the oldest record kept, or a later time", to, c.topic, strings.Join(tooOld, ", "))
	}
	return plan, nil
}

// ResetOffsets commits plan's new offsets for the group, as an admin
// commit (no member, generation -1), which Kafka accepts only while the
// group has no members. It checks the group first and reads the offsets
// back after.
func (c *Collector) ResetOffsets(ctx context.Context, plan *ResetPlan) error {
	if plan.Group != c.group || plan.Topic != c.topic {
		return errors.New("the plan is for another group or topic")
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	ps := make([]int32, len(plan.Partitions))
	for i, r := range plan.Partitions {
		ps[i] = r.Partition
	}
	var reqs atomic.Int64
	_, desc, err := c.groupState(ps, &reqs)
	if err != nil {
		return c.cfg.Explain(err)
	}
	if desc != nil && len(desc.Members) > 0 {
		return membersErr(c.group, membersOf(desc, c.topic))
	}
	coord, err := c.client.Coordinator(c.group)
	if err != nil {
		return c.cfg.Explain(fmt.Errorf("find coordinator of group %s: %w", c.group, err))
	}
	req := sarama.NewOffsetCommitRequest(c.client.Config(), c.group)
	for _, r := range plan.Partitions {
		req.AddBlockWithLeaderEpoch(c.topic, r.Partition, r.New, -1, 0, "")
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		_ = coord.Close()
		return c.cfg.Explain(fmt.Errorf("commit offsets of group %s at %s: %w", c.group, coord.Addr(), err))
	}
	for _, r := range plan.Partitions {
		kerr, ok := resp.Errors[c.topic][r.Partition]
		if !ok {
			return fmt.Errorf("commit offsets of group %s: no answer for %s/%d", c.group, c.topic, r.Partition)
		}
		switch {
		case errors.Is(kerr, sarama.ErrNoError):
		case errors.Is(kerr, sarama.ErrUnknownMemberId), errors.Is(kerr, sarama.ErrIllegalGeneration), errors.Is(kerr, sarama.ErrRebalanceInProgress):
			// A member joined between the check and the commit.
			_, desc, _ := c.groupState(ps, &reqs)
			var ms []Member
			if desc != nil {
				ms = membersOf(desc, c.topic)
			}
			return membersErr(c.group, ms)
		default:
			return c.cfg.Explain(fmt.Errorf("commit offset %d on %s/%d for group %s: %w", r.New, c.topic, r.Partition, c.group, kerr))
		}
	}
	commits, _, err := c.groupState(ps, &reqs)
	if err != nil {
		return c.cfg.Explain(fmt.Errorf("read the offsets back: %w", err))
	}
	for _, r := range plan.Partitions {
		if commits[r.Partition] != r.New {
			return fmt.Errorf("%s/%d: group %s's offset reads %d after the reset to %d (a consumer committed meanwhile?)", c.topic, r.Partition, c.group, commits[r.Partition], r.New)
		}
	}
	return nil
}

// membersErr explains a group with members, naming them and the fix.
func membersErr(group string, ms []Member) error {
	var who []string
	for _, m := range ms {
		who = append(who, MemberName(m))
		if len(who) == 5 && len(ms) > 5 {
			who = append(who, fmt.Sprintf("and %d more", len(ms)-5))
			break
		}
	}
	if len(who) == 0 {
		who = []string{"a member that joined just now"}
	}
	return fmt.Errorf("%w: group %s has %d member(s) (%s); Kafka moves a group's offsets only while it has none. Stop its consumers first: --stop-fleet scales the inferops workers to 0 through the control topic and restores them after; without it, stop every `inferops worker` of the group (systemctl stop inferops-worker) and any other consumer, wait for the members to leave (`inferops status` shows them), then run this again",
		ErrGroupHasMembers, group, max(len(ms), 1), strings.Join(who, ", "))
}

// PlanResetWhenEmpty plans as PlanReset once the group has no members:
// after its consumers were told to stop (the fleet scaled to 0, a console's
// own workers stopped), whose last commits the plan must start from. When
// ctx ends first, the error names the members still there.
func (c *Collector) PlanResetWhenEmpty(ctx context.Context, to ResetTarget, partitions []int32) (*ResetPlan, error) {
	var last *ResetPlan
	for {
		plan, err := c.PlanReset(ctx, to, partitions)
		switch {
		case err != nil && (ctx.Err() == nil || last == nil):
			return nil, err
		case err == nil && len(plan.Members) == 0:
			return plan, nil
		case err == nil:
			last = plan
		}
		select {
		case <-ctx.Done():
			var who []string
			for _, m := range last.Members {
				who = append(who, MemberName(m))
			}
			return nil, fmt.Errorf("group %s still has %d member(s) after its workers were stopped: %s (a consumer outside the fleet, or an instance run with --control=ignore: stop it and run this again)",
				c.group, len(last.Members), strings.Join(who, ", "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
