package worker

import (
	"math"
	"strconv"

	"github.com/IBM/sarama"
)

// Header names on results and dead letters. inferops-source lets anyone trace
// an output or a DLQ entry back to the exact input record.
const (
	HeaderSource       = "inferops-source"        // topic/partition/offset of the input
	HeaderModelVersion = "inferops-model-version" // the version that really served the row
	HeaderError        = "inferops-error"         // DLQ: the reason (a Reason* constant)
	HeaderErrorDetail  = "inferops-error-detail"  // DLQ: where and why, for humans
	HeaderTruncated    = "inferops-truncated"     // DLQ: original size when the value was cut
)

// dlqMaxValue caps the copy of an oversized record in the DLQ: the original
// would be rejected by the broker for the same reason it was rejected here.
const dlqMaxValue = 64 << 10

// appendSource writes "topic/partition/offset".
func appendSource(dst []byte, topic string, partition int32, offset int64) []byte {
	dst = append(dst, topic...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, offset, 10)
}

// appendResult encodes one result value:
//
//	{"id":...,"model":"my_model","model_version":2,"predictions":[0.25]}
//
// id is the raw JSON token from the input, or "topic-partition-offset" when
// the input had none. modelJSON is the model name already quoted.
func appendResult(dst []byte, id []byte, topic string, partition int32, offset int64, modelJSON []byte, version int64, preds []float32) []byte {
	dst = append(dst, `{"id":`...)
	if id != nil {
		dst = append(dst, id...)
	} else {
		dst = append(dst, '"')
		dst = appendJSONStringBody(dst, topic)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, int64(partition), 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, offset, 10)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"model":`...)
	dst = append(dst, modelJSON...)
	dst = append(dst, `,"model_version":`...)
	dst = strconv.AppendInt(dst, version, 10)
	dst = append(dst, `,"predictions":[`...)
	for i, v := range preds {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFloat32(dst, v)
	}
	return append(dst, "]}"...)
}

// appendFloat32 writes the shortest decimal that reads back as v. A model
// should never emit NaN or Inf, but if one does the result must still be JSON.
func appendFloat32(dst []byte, v float32) []byte {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 32)
}

// appendJSONString writes s as a quoted JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringBody(dst, s)
	return append(dst, '"')
}

func appendJSONStringBody(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// dlqMessage builds the dead-letter record for an input: the original key and
// bytes (cut to dlqMaxValue when oversized), the reason and the source.
func dlqMessage(dlqTopic string, src *sarama.ConsumerMessage, rerr *recordError) *sarama.ProducerMessage {
	value := src.Value
	headers := make([]sarama.RecordHeader, 0, 4)
	headers = append(headers,
		sarama.RecordHeader{Key: []byte(HeaderError), Value: []byte(rerr.Reason)},
		sarama.RecordHeader{Key: []byte(HeaderSource), Value: appendSource(nil, src.Topic, src.Partition, src.Offset)},
	)
	if rerr.Detail != "" {
		headers = append(headers, sarama.RecordHeader{Key: []byte(HeaderErrorDetail), Value: []byte(rerr.Detail)})
	}
	if len(value) > dlqMaxValue && rerr.Reason == ReasonOversized {
		headers = append(headers, sarama.RecordHeader{Key: []byte(HeaderTruncated), Value: strconv.AppendInt(nil, int64(len(value)), 10)})
		value = value[:dlqMaxValue]
	}
	msg := &sarama.ProducerMessage{Topic: dlqTopic, Headers: headers}
	if src.Key != nil {
		msg.Key = sarama.ByteEncoder(src.Key)
	}
	if value != nil {
		msg.Value = sarama.ByteEncoder(value)
	}
	return msg
}
