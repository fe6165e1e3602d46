package pipeline

import "time"

// DeadLetter is one record on the dead-letter topic as a reader sees it:
// why it was refused and where it came from. Readers never need the payload
// beyond a preview (it may carry user data).
type DeadLetter struct {
	Time      time.Time
	Reason    string // HeaderError; "unknown" when a record carries none
	Detail    string // HeaderErrorDetail
	Topic     string // of the input (HeaderSource)
	Partition int32
	Offset    int64
	Preview   []byte // the first bytes of the value
}

// PreviewBytes is how much of a dead letter's value readers keep.
const PreviewBytes = 200

// ReasonUnknown groups dead letters without an inferops-error header
// (written by another tool, or by hand).
const ReasonUnknown = "unknown"
