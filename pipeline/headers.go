package pipeline

import "strconv"

// Header names on results and dead letters. inferops-source lets anyone trace
// an output or a DLQ entry back to the exact input record.
const (
	HeaderSource       = "inferops-source"        // topic/partition/offset of the input
	HeaderModelVersion = "inferops-model-version" // the version that really served the row
	HeaderError        = "inferops-error"         // DLQ: the reason (a Reason* constant)
	HeaderErrorDetail  = "inferops-error-detail"  // DLQ: where and why, for humans
	HeaderTruncated    = "inferops-truncated"     // DLQ: original size when the value was cut
	// HeaderRedrives counts how often a record was sent back from the DLQ
	// (`inferops dlq replay`): on the replayed input record, and carried
	// by the worker onto its dead letter when it fails again, so a record
	// that fails every time stops after --max-redrives.
	HeaderRedrives = "inferops-redrives"
)

// DefaultMaxRedrives is how often a replay sends the same record back
// before it leaves it in the DLQ.
const DefaultMaxRedrives = 3

// maxRedrives bounds what ParseRedrives accepts: any real count is tiny.
const maxRedrives = 1 << 20

// ParseRedrives reads a HeaderRedrives value: a decimal count. Anything
// else (empty, signed, huge, not a number) is not ok: the header comes
// from outside, and a replay must not guess how often a record looped.
func ParseRedrives(b []byte) (n int, ok bool) {
	if len(b) == 0 || len(b) > 7 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxRedrives
}

// Header is one record header, in the terms of this package (the Kafka
// client's own type stays in the packages that speak Kafka).
type Header struct {
	Key, Value []byte
}

// DeadLetterHeaders are the headers of the dead letter for the input at
// topic/partition/offset: the reason, the source, the detail when there is
// one, the original size when the copy is cut to DLQMaxValue, and the
// input's redrive count (its HeaderRedrives value, nil for a record never
// replayed) as it came.
func DeadLetterHeaders(rerr *RecordError, topic string, partition int32, offset int64, originalSize int, redrives []byte) []Header {
	h := make([]Header, 0, 5)
	h = append(h,
		Header{Key: []byte(HeaderError), Value: []byte(rerr.Reason)},
		Header{Key: []byte(HeaderSource), Value: AppendSource(nil, topic, partition, offset)},
	)
	if rerr.Detail != "" {
		h = append(h, Header{Key: []byte(HeaderErrorDetail), Value: []byte(rerr.Detail)})
	}
	if originalSize > DLQMaxValue && rerr.Reason == ReasonOversized {
		h = append(h, Header{Key: []byte(HeaderTruncated), Value: strconv.AppendInt(nil, int64(originalSize), 10)})
	}
	if redrives != nil {
		// Copied as is, even when it does not parse: the replay then
		// refuses the record rather than resetting its count.
		h = append(h, Header{Key: []byte(HeaderRedrives), Value: append([]byte(nil), redrives...)})
	}
	return h
}

// DeadLetterValue is what the DLQ keeps of an input value: all of it, but an
// oversized one is cut to DLQMaxValue (DeadLetterHeaders then records the
// original size).
func DeadLetterValue(v []byte, rerr *RecordError) []byte {
	if len(v) > DLQMaxValue && rerr.Reason == ReasonOversized {
		return v[:DLQMaxValue]
	}
	return v
}
