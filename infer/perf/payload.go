package perf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/inferops/inferops/pipeline"
)

// A perf record is a valid model input in the seed's format plus what the
// run needs to recognise its own results:
//
//	{"id":"<run>-<seq>","run":"<run>","stream":7,"sent_at_ns":<unix ns>,
//	 "features":[0.123456,...],"pad":"<filler>"}
//
// The worker ignores unknown keys, so "pad" brings the record to the
// scenario's size without changing what the model sees. The filler is random
// base64 so compression (zstd, as the seed configures producers) cannot
// shrink a 10 KB record to a few hundred bytes on the wire.

// payloadBuilder writes records of exactly one size for one run.
type payloadBuilder struct {
	run   string
	size  int
	width int
	fill  []byte // random base64, at least size long
}

// stream is what one generator stream reuses for every record: its Kafka
// key (so a stream's records share a partition, as a real producer's do)
// and its feature vector.
type stream struct {
	id       int
	key      []byte
	features []byte // `[f1,...,fD]`
}

func newPayloadBuilder(run string, size, width int, rng *rand.Rand) *payloadBuilder {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	fill := make([]byte, size)
	for i := range fill {
		fill[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return &payloadBuilder{run: run, size: size, width: width, fill: fill}
}

func (b *payloadBuilder) newStream(id int, rng *rand.Rand) *stream {
	f := pipeline.AppendFeatures(make([]byte, 0, 10*b.width+2), b.width, func(int) float64 { return rng.Float64() }, 6)
	return &stream{id: id, key: fmt.Appendf(nil, "%s-s%d", b.run, id), features: f}
}

// build appends one record to dst[:0]. The filler makes every record exactly
// b.size bytes unless the fixed part alone is larger (checkSize rejects such
// scenarios before a run starts).
func (b *payloadBuilder) build(dst []byte, s *stream, seq int64, sentAtUnixNano int64) []byte {
	dst = append(dst[:0], '{')
	dst = pipeline.AppendKey(dst, pipeline.FieldID)
	dst = append(dst, '"')
	dst = append(dst, b.run...) // run ids are [a-z0-9]: nothing to escape
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, '"')
	dst = pipeline.AppendKey(dst, "run")
	dst = append(dst, '"')
	dst = append(dst, b.run...)
	dst = append(dst, '"')
	dst = pipeline.AppendKey(dst, "stream")
	dst = strconv.AppendInt(dst, int64(s.id), 10)
	dst = pipeline.AppendKey(dst, "sent_at_ns")
	dst = strconv.AppendInt(dst, sentAtUnixNano, 10)
	dst = pipeline.AppendKey(dst, pipeline.FieldFeatures)
	dst = append(dst, s.features...)
	return pipeline.ClosePadded(dst, b.size, b.fill)
}

// checkSize fails when the scenario's payload cannot hold a record with this
// run id and feature width.
func (b *payloadBuilder) checkSize(rng *rand.Rand) error {
	s := b.newStream(999999, rng)
	rec := b.build(nil, s, 1<<40, 1<<62)
	if len(rec) > b.size {
		return fmt.Errorf("--payload-bytes %d is too small for a record of %d features (at least %d bytes)", b.size, b.width, len(rec))
	}
	return nil
}

// resultID extracts the sequence number from a worker result that belongs to
// this run. The worker writes {"id":<input id verbatim>,...}, so the fast path
// is a prefix match; anything else falls back to a JSON decode. ok is false
// for results of other runs and other producers, which a perf run ignores.
func resultID(value []byte, prefix []byte) (seq int64, ok bool) {
	const head = `{"id":"`
	if bytes.HasPrefix(value, []byte(head)) && bytes.HasPrefix(value[len(head):], prefix) {
		return parseSeq(value[len(head)+len(prefix):], '"')
	}
	var r struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(value, &r) != nil {
		return 0, false
	}
	var id string
	if json.Unmarshal(r.ID, &id) != nil || !bytes.HasPrefix([]byte(id), prefix) {
		return 0, false
	}
	return parseSeq(append([]byte(id[len(prefix):]), 0), 0)
}

// parseSeq reads decimal digits up to the terminator.
func parseSeq(b []byte, term byte) (int64, bool) {
	var n int64
	for i, c := range b {
		switch {
		case c == term:
			return n, i > 0
		case c >= '0' && c <= '9' && i < 18:
			n = n*10 + int64(c-'0')
		default:
			return 0, false
		}
	}
	return 0, false
}
