package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// item is one input record on its way through the pipeline. It embeds the
// ProducerMessage of its result (or dead letter) so a record costs no extra
// allocations for headers and metadata; items are recycled after the ack.
type item struct {
	msg  sarama.ProducerMessage
	hdrs [2]sarama.RecordHeader

	m         *member
	tr        *partitionTracker
	seq       uint64
	topic     string
	partition int32
	offset    int64
	key       []byte
	value     []byte          // the original input bytes (the DLQ copies them)
	redrives  []byte          // HeaderRedrives of the input, carried onto its dead letter
	vals      pipeline.Values // the record parsed for the schema; aliases value
	ts        time.Time       // record timestamp, for end-to-end latency
	dlq       bool
	vc        *versionCounter // the version that served it (results only)
	side      *sideWindow     // its rollout side, nil without a rollout

	produceAttempts int // failed produces so far, for the retry backoff

	out []byte // result value
	src []byte // inferops-source header value
	ver []byte // inferops-model-version header value
}

func (p *Pool) getItem() *item {
	if v := p.itemPool.Get(); v != nil {
		return v.(*item)
	}
	return &item{}
}

func (p *Pool) putItem(it *item) {
	if it.produceAttempts > 0 {
		// sarama may still read the message it returned on Errors; let
		// the garbage collector have this one rather than reuse it.
		return
	}
	// The Values keep their columns for the next record, which Parse
	// resets first; everything else starts afresh.
	*it = item{vals: it.vals, out: it.out[:0], src: it.src[:0], ver: it.ver[:0]}
	p.itemPool.Put(it)
}

// parse reads a consumed record for the schema; a refused one goes to the
// DLQ (and parse reports false).
func (p *Pool) parse(it *item) bool {
	if len(it.value) > p.cfg.MaxMessageBytes {
		p.deadLetter(it, &pipeline.RecordError{Reason: pipeline.ReasonOversized, Detail: fmt.Sprintf("%d bytes > --max-message-bytes %d", len(it.value), p.cfg.MaxMessageBytes)})
		return false
	}
	if rerr := p.schema.Parse(it.value, &it.vals); rerr != nil {
		p.deadLetter(it, rerr)
		return false
	}
	return true
}

// send hands an item's message to the producer; the ack comes back through
// readSuccesses.
func (p *Pool) send(it *item) {
	it.msg.Metadata = it
	p.pending.Add(1)
	p.producer.Input() <- &it.msg
}

// deadLetter sends the original record to the DLQ with the reason.
func (p *Pool) deadLetter(it *item, rerr *pipeline.RecordError) {
	hs := pipeline.DeadLetterHeaders(rerr, it.topic, it.partition, it.offset, len(it.value), it.redrives)
	headers := make([]sarama.RecordHeader, len(hs))
	for i, h := range hs {
		headers[i] = sarama.RecordHeader{Key: h.Key, Value: h.Value}
	}
	it.msg = sarama.ProducerMessage{Topic: p.cfg.DLQ, Headers: headers}
	if it.key != nil {
		it.msg.Key = sarama.ByteEncoder(it.key)
	}
	if v := pipeline.DeadLetterValue(it.value, rerr); v != nil {
		it.msg.Value = sarama.ByteEncoder(v)
	}
	it.dlq = true
	p.countError(rerr.Reason)
	if it.side != nil && rerr.Reason == pipeline.ReasonRejected {
		it.side.count(func(s *sideSlice) { s.dlq++ })
	}
	p.recent.add(pipeline.DeadLetter{Time: time.Now(), Reason: rerr.Reason, Detail: rerr.Detail, Topic: it.topic, Partition: it.partition, Offset: it.offset,
		Preview: append([]byte(nil), it.value[:min(len(it.value), pipeline.PreviewBytes)]...)})
	if onceASecond(&p.lastDLQEvent) {
		p.event(pipeline.KindDLQ, fmt.Sprintf("%s/%d/%d -> %s: %s", it.topic, it.partition, it.offset, p.cfg.DLQ, rerr.Error()))
	}
	p.send(it)
}

// onceASecond rate-limits an event kind so a flood of bad input or failed
// writes cannot push everything else out of the event ring (the counters
// still count every one).
func onceASecond(last *atomic.Int64) bool {
	now := time.Now().Unix()
	l := last.Load()
	return l != now && last.CompareAndSwap(l, now)
}

// process predicts one micro-batch and produces its results.
func (p *Pool) process(m *member, batch []*item) {
	// Records of a partition this member no longer owns are handed back:
	// the new owner reads them again, and predicting them here would only
	// produce duplicates.
	live := batch[:0]
	for _, it := range batch {
		if it.tr.isRevoked() {
			it.tr.end()
			p.putItem(it)
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	if st := p.split.Load(); st != nil {
		p.splitAndSend(m, st, live)
		return
	}
	p.predictRows(m, live, p.Target(), nil, nil)
}

// predictRows predicts rows on target t and produces results; side is
// their rollout side (nil without a rollout) and sh the rows of them to
// shadow. When TF Serving rejects the batch as INVALID_ARGUMENT and a
// metadata probe confirms the target itself is sound (tfs.go), it splits
// the batch in halves to find the bad rows, which go to the DLQ; the good
// ones are served.
func (p *Pool) predictRows(m *member, rows []*item, t tfserving.Target, side *sideWindow, sh *shadowJob) {
	if p.schema.Decides() {
		// Inputs whose inner sizes each record decides (a list of ids of
		// any length) batch only with records of the same sizes.
		for i := 1; i < len(rows); i++ {
			if !rows[i].vals.SameShapes(&rows[0].vals) {
				same, other := splitByShape(rows)
				p.predictRows(m, same, t, side, nil)
				p.predictRows(m, other, t, side, nil)
				return
			}
		}
	}
	b := p.gather(rows)
	res, err := p.predictRetry(m.hard, t, side, len(rows), b.inputs)
	p.batches.Put(b)
	var rej *rejectedError
	switch {
	case err == nil:
	case errors.As(err, &rej):
		if len(rows) == 1 {
			p.deadLetter(rows[0], &pipeline.RecordError{Reason: pipeline.ReasonRejected, Detail: rej.msg})
			return
		}
		half := len(rows) / 2
		p.predictRows(m, rows[:half], t, side, nil)
		p.predictRows(m, rows[half:], t, side, nil)
		return
	default:
		// The member is stopping and gave up waiting for TF Serving: hand
		// the records back uncommitted.
		for _, it := range rows {
			it.tr.end()
			p.putItem(it)
		}
		return
	}
	m.nBatches.Add(1)
	m.nRows.Add(uint64(len(rows)))
	vc := p.versionCounter(res.version)
	vc.count.Add(uint64(len(rows)))
	vc.lat.record(res.latency)
	p.metrics.versionRows.WithLabelValues(strconv.FormatInt(res.version, 10)).Add(float64(len(rows)))
	if side != nil {
		p.recordSide(side, res, len(rows))
		if sh != nil {
			p.shadow(sh, rows, res)
		}
	}
	// Stamped here rather than by the producer so the end-to-end latency
	// recorded at the ack is exactly the result's timestamp minus the
	// input's (Kafka keeps milliseconds).
	stamp := time.Now().Truncate(time.Millisecond)
	for i, it := range rows {
		it.out = pipeline.AppendResult(it.out[:0], it.vals.ID, it.topic, it.partition, it.offset, p.modelJSON, res.version, res.outputs, i)
		it.src = pipeline.AppendSource(it.src[:0], it.topic, it.partition, it.offset)
		it.ver = strconv.AppendInt(it.ver[:0], res.version, 10)
		it.hdrs[0] = sarama.RecordHeader{Key: hdrSource, Value: it.src}
		it.hdrs[1] = sarama.RecordHeader{Key: hdrVersion, Value: it.ver}
		it.msg = sarama.ProducerMessage{Topic: p.cfg.Output, Value: sarama.ByteEncoder(it.out), Headers: it.hdrs[:], Timestamp: stamp}
		it.vc = vc
		if it.key != nil {
			it.msg.Key = sarama.ByteEncoder(it.key)
		}
		p.send(it)
	}
}

// splitByShape separates the records shaped like the first from the rest,
// keeping their order.
func splitByShape(rows []*item) (same, other []*item) {
	for _, it := range rows {
		if it.vals.SameShapes(&rows[0].vals) {
			same = append(same, it)
		} else {
			other = append(other, it)
		}
	}
	return same, other
}

var (
	hdrSource  = []byte(pipeline.HeaderSource)
	hdrVersion = []byte(pipeline.HeaderModelVersion)
)

// predictResult is one successful Predict: the outputs results carry, in
// the order of the pool's output names, each row by row.
type predictResult struct {
	version int64
	outputs []pipeline.Output
	tensors []*tensor.Tensor // the same outputs' tensors
	latency time.Duration
}

// resultRows writes an output's rows as results carry them: TF Serving's
// row format, NaN as null so results stay JSON.
type resultRows struct {
	t   *tensor.Tensor
	opt tensor.JSONOptions
}

func (r resultRows) AppendRowJSON(dst []byte, row int) []byte {
	return tensor.AppendRowJSON(dst, r.t, row, r.opt)
}

// rejectedError is TF Serving's INVALID_ARGUMENT for rows of a sound target:
// the input, not the server, is wrong, so retrying cannot help.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return "rejected by the model: " + e.msg }

// predictRetry calls Predict on t until TF Serving answers, rejects the
// input, or ctx ends. Failures back off with jitter and feed the circuit
// breaker; a rollout candidate's do not (side counts them for the
// rollout's error gate instead): a failing candidate is the rollout's to
// judge, not an outage of TF Serving.
func (p *Pool) predictRetry(ctx context.Context, t tfserving.Target, side *sideWindow, rows int, in map[string]*tensor.Tensor) (predictResult, error) {
	candidate := false
	if st := p.split.Load(); st != nil && side == st.cand {
		candidate = true
	}
	for attempt := 0; ; attempt++ {
		probe, err := p.breaker.acquire(ctx)
		if err != nil {
			return predictResult{}, err
		}
		if side == nil {
			t = p.Target() // a switch while retrying takes effect
		}
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PredictTimeout)
		start := time.Now()
		res, err := p.predictOnce(pctx, t, rows, in)
		lat := time.Since(start)
		cancel()
		if side != nil {
			side.count(func(s *sideSlice) {
				s.calls++
				var rej *rejectedError
				if err != nil && !errors.As(err, &rej) && ctx.Err() == nil {
					s.errors++
				}
			})
		}
		if err == nil {
			p.breaker.success(probe)
			res.latency = lat
			p.predictLat.record(lat)
			p.metrics.predict.Observe(lat.Seconds())
			return res, nil
		}
		var rej *rejectedError
		if errors.As(err, &rej) {
			p.breaker.success(probe) // the server is fine; the rows are not
			return res, err
		}
		if ctx.Err() != nil {
			p.breaker.release(probe)
			return predictResult{}, ctx.Err()
		}
		// With several TF Serving hosts one failing is not an outage: the
		// client already steers the retry to another. Only a client with
		// no healthy host left (always so with one host) feeds the breaker.
		if p.tfs.Healthy() > 0 || candidate {
			p.breaker.release(probe)
		} else {
			p.breaker.failure(probe)
		}
		p.retries.Add(1)
		p.metrics.retries.Inc()
		p.countError("predict")
		if attempt == 0 || attempt%20 == 0 {
			p.event(pipeline.KindError, fmt.Sprintf("Predict %s (%s) failed, retrying: %v", p.cfg.Model, t.String(), err))
		}
		if !sleepCtx(ctx, p.backoff.delay(attempt)) {
			return predictResult{}, ctx.Err()
		}
	}
}

// batch is the Predict request of a micro-batch: one tensor per input,
// gathered input by input along the batch dimension. Its buffers are
// pooled; the strings alias the records, which outlive the Predict.
type batch struct {
	inputs map[string]*tensor.Tensor
	cols   []tensor.Tensor // per schema input
}

// gather builds the batch of rows (all of one shape) for the schema.
func (p *Pool) gather(rows []*item) *batch {
	s := p.schema
	b, _ := p.batches.Get().(*batch)
	if b == nil {
		b = &batch{inputs: make(map[string]*tensor.Tensor, s.Len()), cols: make([]tensor.Tensor, s.Len())}
		for i := range b.cols {
			spec, _, _ := s.Input(i)
			b.cols[i].DType = spec.DType
			b.inputs[spec.Name] = &b.cols[i]
		}
	}
	first := &rows[0].vals
	for i := range b.cols {
		t := &b.cols[i]
		_, _, kind := s.Input(i)
		t.Shape = append(append(t.Shape[:0], int64(len(rows))), first.Dims(i)...)
		switch {
		case kind == pipeline.KindFloat32:
			t.Float32 = t.Float32[:0]
			for _, it := range rows {
				t.Float32 = append(t.Float32, it.vals.Float32s(i)...)
			}
		case kind == pipeline.KindFloat64:
			t.Float64 = t.Float64[:0]
			for _, it := range rows {
				t.Float64 = append(t.Float64, it.vals.Float64s(i)...)
			}
		case kind == pipeline.KindInt64 && t.DType == tfpb.DataType_DT_UINT64:
			t.Uint64 = t.Uint64[:0]
			for _, it := range rows {
				for _, x := range it.vals.Int64s(i) {
					t.Uint64 = append(t.Uint64, uint64(x))
				}
			}
		case kind == pipeline.KindInt64:
			t.Int64 = t.Int64[:0]
			for _, it := range rows {
				t.Int64 = append(t.Int64, it.vals.Int64s(i)...)
			}
		case kind == pipeline.KindBool:
			t.Bool = t.Bool[:0]
			for _, it := range rows {
				t.Bool = append(t.Bool, it.vals.Bools(i)...)
			}
		case kind == pipeline.KindString:
			clear(t.Strings)
			t.Strings = t.Strings[:0]
			for _, it := range rows {
				t.Strings = append(t.Strings, it.vals.Strings(i)...)
			}
		}
	}
	return b
}
