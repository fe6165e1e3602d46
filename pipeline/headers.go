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
)

// Header is one record header, in the terms of this package (the Kafka
// client's own type stays in the packages that speak Kafka).
type Header struct {
	Key, Value []byte
}

// DeadLetterHeaders are the headers of the dead letter for the input at
// topic/partition/offset: the reason, the source, the detail when there is
// one, and the original size when the copy is cut to DLQMaxValue.
func DeadLetterHeaders(rerr *RecordError, topic string, partition int32, offset int64, originalSize int) []Header {
	h := make([]Header, 0, 4)
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
