package cluster

import (
	"encoding/json"
	"fmt"
	"time"
)

// Status is a consumer's health per Burrow's evaluation rules
// (/work/shared/docs/lag.md). The order is the severity used to pick a
// group's worst partition.
type Status int

const (
	StatusOK     Status = iota // caught up at some point in the window, or keeping pace
	StatusWarn                 // lag never decreased across the window: falling behind
	StatusStall                // a live member owns it but the committed offset does not move while lag > 0
	StatusStop                 // nobody commits any more (no live owner, offset unchanged for the whole window)
	StatusRewind               // the committed offset went backwards and has not recovered
	StatusErr                  // group level: some partition is STALL, STOP or REWIND
	// StatusNotFound is group level, as in Burrow: the group does not exist
	// (Dead, no members, no commit on the topic), so there is nothing to
	// call OK. Partitions keep their own status (STOP where records wait).
	StatusNotFound
)

var statusNames = [...]string{"OK", "WARN", "STALL", "STOP", "REWIND", "ERR", "NOTFOUND"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// MarshalJSON writes the name ("OK", "STALL", ...), which is what scripts
// and humans compare against.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON accepts the names MarshalJSON writes.
func (s *Status) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range statusNames {
		if n == name {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", name)
}

// commitEntry is one observation of a partition's committed offset. We
// poll (OffsetFetch) instead of reading __consumer_offsets like Burrow, so
// the window holds one entry per refresh rather than one per commit.
type commitEntry struct {
	Time   time.Time
	Offset int64
	Lag    int64
}

// evaluatePartition applies Burrow's rules, in Burrow's order, to a window
// of the last `intervals` observations (oldest first). owned says a live
// group member holds the partition: polling cannot tell "commits stopped"
// from "commits repeat the same offset", so a member that still holds the
// partition marks STALL and an orphaned partition marks STOP.
func evaluatePartition(window []commitEntry, owned bool, allowedLag int64, intervals int) Status {
	if len(window) == 0 || len(window) < intervals {
		return StatusOK // too few entries to judge
	}
	last := window[len(window)-1]
	if last.Lag <= allowedLag {
		return StatusOK
	}
	unchanged := true
	for _, e := range window[1:] {
		if e.Offset != window[0].Offset {
			unchanged = false
			break
		}
	}
	// 1. STOP: no commit progress for the whole window and nobody left to
	// make any. (Lag > 0 means the log end is past the last commit.)
	if unchanged && !owned {
		return StatusStop
	}
	// 2. REWIND: the committed offset went backwards and has not since
	// climbed back to where it was.
	var maxOff int64 = -1
	for _, e := range window[:len(window)-1] {
		maxOff = max(maxOff, e.Offset)
	}
	if last.Offset < maxOff {
		return StatusRewind
	}
	// 3. OK: caught up at some point in the window.
	for _, e := range window {
		if e.Lag <= allowedLag {
			return StatusOK
		}
	}
	// 4. STALL: a member holds it but the offset never moves.
	if unchanged {
		return StatusStall
	}
	// 5. WARN: lag never decreased between consecutive entries.
	decreased := false
	for i := 1; i < len(window); i++ {
		if window[i].Lag < window[i-1].Lag {
			decreased = true
			break
		}
	}
	if !decreased {
		return StatusWarn
	}
	return StatusOK
}

// groupStatus is the worst partition, with STOP, STALL and REWIND (and ERR)
// reported as ERR for the group, as Burrow does.
func groupStatus(parts []PartitionLag) Status {
	worst := StatusOK
	for _, p := range parts {
		switch p.Status {
		case StatusStall, StatusStop, StatusRewind, StatusErr, StatusNotFound:
			return StatusErr
		case StatusWarn:
			worst = StatusWarn
		}
	}
	return worst
}
