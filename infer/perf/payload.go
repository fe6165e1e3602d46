package perf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/inferops/inferops/pipeline"
)

// A perf record is a valid model input for the model's signature
// (pipeline.Synth writes the inputs, as for the demo) plus what the run
// needs to recognise its own results:
//
//	{"id":"<run>-<seq>","run":"<run>","stream":7,"sent_at_ns":<unix ns>,
//	 "features":[0.123456,...],"pad":"<filler>"}        (my_model)
//	{"id":...,"sent_at_ns":...,"ad_ids":[...],"context":[...],"hour":13,
//	 "query":"running shoes","user_id":123456789,"pad":"<filler>"}  (ads_ctr)
//
// The worker ignores unknown keys, so "pad" brings the record to the
// scenario's size without changing what the model sees. The filler is random
// base64 so compression (zstd, as the seed configures producers) cannot
// shrink a 10 KB record to a few hundred bytes on the wire.

// payloadBuilder writes records of exactly one size for one run.
type payloadBuilder struct {
	run   string
	size  int
	synth *pipeline.Synth
	fill  []byte // random base64, at least size long
}

// stream is what one generator stream reuses for every record: its Kafka
// key (so a stream's records share a partition, as a real producer's do)
// and its input values.
type stream struct {
	id     int
	key    []byte
	inputs []byte // `"features":[...]` or `"ad_ids":[...],...`
}

// perfFields are the fields a perf record carries besides the inputs.
var perfFields = []string{"run", "stream", "sent_at_ns", pipeline.FieldPad}

func newPayloadBuilder(run string, size int, synth *pipeline.Synth, rng *rand.Rand) *payloadBuilder {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	fill := make([]byte, size)
	for i := range fill {
		fill[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return &payloadBuilder{run: run, size: size, synth: synth, fill: fill}
}

func (b *payloadBuilder) newStream(id int, rng *rand.Rand) *stream {
	in := b.synth.AppendInputs([]byte{'{'}, rng)[1:] // no comma before the first
	return &stream{id: id, key: fmt.Appendf(nil, "%s-s%d", b.run, id), inputs: in}
}

// build appends one record to dst[:0]. The filler makes every record exactly
// b.size bytes unless the fixed part alone is larger (checkSize rejects such
// scenarios before a run starts).
func (b *payloadBuilder) build(dst []byte, s *stream, seq int64, sentAtUnixNano int64) []byte {
	dst = append(dst[:0], '{')
	dst = pipeline.AppendKey(dst, b.synth.Schema().IDField())
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
	dst = append(dst, ',')
	dst = append(dst, s.inputs...)
	return pipeline.ClosePadded(dst, b.size, b.fill)
}

// checkSize fails when the scenario's payload cannot hold a record with this
// run id and inputs, or when an input is read from a field perf uses.
func (b *payloadBuilder) checkSize(rng *rand.Rand) error {
	sc := b.synth.Schema()
	for i := range sc.Len() {
		spec, field, _ := sc.Input(i)
		if slices.Contains(perfFields, field) {
			return fmt.Errorf("input %q is read from field %q, which perf records use for themselves (map it with --input-field %s=FIELD)", spec.Name, field, spec.Name)
		}
	}
	s := b.newStream(999999, rng)
	rec := b.build(nil, s, 1<<40, 1<<62)
	if len(rec) > b.size {
		return fmt.Errorf("--payload-bytes %d is too small for a record of %s (at least %d bytes)", b.size, sc.Describe(), len(rec))
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
