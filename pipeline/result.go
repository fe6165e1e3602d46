package pipeline

import (
	"bytes"
	"math"
	"strconv"
)

// AppendSource writes "topic/partition/offset", the value of HeaderSource.
func AppendSource(dst []byte, topic string, partition int32, offset int64) []byte {
	dst = append(dst, topic...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, offset, 10)
}

// AppendResult encodes one result value, the record downstream apps read:
//
//	{"id":...,"model":"my_model","model_version":2,"predictions":[0.25]}
//
// id is the raw JSON token from the input, or "topic-partition-offset" when
// the input had none. modelJSON is the model name already quoted.
func AppendResult(dst []byte, id []byte, topic string, partition int32, offset int64, modelJSON []byte, version int64, preds []float32) []byte {
	dst = append(dst, `{"`+FieldID+`":`...)
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
	dst = append(dst, `,"`+FieldModel+`":`...)
	dst = append(dst, modelJSON...)
	dst = append(dst, `,"`+FieldModelVersion+`":`...)
	dst = strconv.AppendInt(dst, version, 10)
	dst = append(dst, `,"`+FieldPredictions+`":[`...)
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

// AppendJSONString writes s as a quoted JSON string.
func AppendJSONString(dst []byte, s string) []byte {
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

// ParseSource reads a HeaderSource value back: "ai_input/3/1234". The topic
// may itself contain slashes; the last two fields are the numbers.
func ParseSource(b []byte) (topic string, partition int32, offset int64, ok bool) {
	j := bytes.LastIndexByte(b, '/')
	if j <= 0 {
		return "", 0, 0, false
	}
	i := bytes.LastIndexByte(b[:j], '/')
	if i <= 0 {
		return "", 0, 0, false
	}
	p, err := strconv.ParseInt(string(b[i+1:j]), 10, 32)
	if err != nil || p < 0 {
		return "", 0, 0, false
	}
	o, err := strconv.ParseInt(string(b[j+1:]), 10, 64)
	if err != nil || o < 0 {
		return "", 0, 0, false
	}
	return string(b[:i]), int32(p), o, true
}
