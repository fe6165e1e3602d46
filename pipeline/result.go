package pipeline

import (
	"bytes"
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

// RowWriter writes one row of one output tensor of a batch as JSON, in TF
// Serving's REST row format (tensor.AppendRowJSON).
type RowWriter interface {
	AppendRowJSON(dst []byte, row int) []byte
}

// Output is one output of a batch as AppendResult writes it.
type Output struct {
	NameJSON []byte // the output alias, already a JSON string
	Rows     RowWriter
}

// AppendResult encodes one result value, the record downstream apps read:
//
//	{"id":...,"model":"my_model","model_version":2,"predictions":[0.25]}
//	{"id":...,"model":"ads_ctr","model_version":1,"predictions":{"ctr":[0.031],"cvr":[0.004]}}
//
// predictions is what TF Serving's REST API returns for this one instance:
// the row's value when the batch has a single output, an object keyed by
// output name (in the order of outs) when it has several. id is the raw
// JSON token from the input, or "topic-partition-offset" when the input had
// none. modelJSON is the model name already quoted.
func AppendResult(dst []byte, id []byte, topic string, partition int32, offset int64, modelJSON []byte, version int64, outs []Output, row int) []byte {
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
	dst = append(dst, `,"`+FieldPredictions+`":`...)
	if len(outs) == 1 {
		dst = outs[0].Rows.AppendRowJSON(dst, row)
		return append(dst, '}')
	}
	dst = append(dst, '{')
	for i, o := range outs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, o.NameJSON...)
		dst = append(dst, ':')
		dst = o.Rows.AppendRowJSON(dst, row)
	}
	return append(dst, "}}"...)
}

// AppendJSONString writes s as a quoted JSON string.
func AppendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringBody(dst, s)
	return append(dst, '"')
}

func appendJSONStringBody[S ~string | ~[]byte](dst []byte, s S) []byte {
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
