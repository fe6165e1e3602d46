package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
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
	value     []byte // the original input bytes (the DLQ copies them)
	redrives  []byte // HeaderRedrives of the input, carried onto its dead letter
	id        []byte // raw JSON id token, aliases value
	feats     []float32
	ts        time.Time // record timestamp, for end-to-end latency
	dlq       bool
	vc        *versionCounter // the version that served it (results only)

	produceAttempts int // failed produces so far, for the retry backoff

	out []byte // result value
	src []byte // inferops-source header value
	ver []byte // inferops-model-version header value
}

func (p *Pool) getItem() *item {
	if v := p.itemPool.Get(); v != nil {
		return v.(*item)
	}
	return &item{feats: make([]float32, 0, p.width)}
}

func (p *Pool) putItem(it *item) {
	if it.produceAttempts > 0 {
		// sarama may still read the message it returned on Errors; let
		// the garbage collector have this one rather than reuse it.
		return
	}
	*it = item{feats: it.feats[:0], out: it.out[:0], src: it.src[:0], ver: it.ver[:0]}
	p.itemPool.Put(it)
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
	p.predictAndSend(m, live)
}

// predictAndSend predicts rows and produces results. When TF Serving
// rejects the batch as INVALID_ARGUMENT and a metadata probe confirms the
// target itself is sound (tfs.go), it splits the batch in halves to find the
// bad rows, which go to the DLQ; the good ones are served.
func (p *Pool) predictAndSend(m *member, rows []*item) {
	width := p.width
	buf := p.getData(len(rows) * width)
	for i, it := range rows {
		copy(buf[i*width:(i+1)*width], it.feats)
	}
	res, err := p.predictRetry(m.hard, len(rows), buf)
	p.putData(buf)
	var rej *rejectedError
	switch {
	case err == nil:
	case errors.As(err, &rej):
		if len(rows) == 1 {
			p.deadLetter(rows[0], &pipeline.RecordError{Reason: pipeline.ReasonRejected, Detail: rej.msg})
			return
		}
		half := len(rows) / 2
		p.predictAndSend(m, rows[:half])
		p.predictAndSend(m, rows[half:])
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
	ow := res.width
	// Stamped here rather than by the producer so the end-to-end latency
	// recorded at the ack is exactly the result's timestamp minus the
	// input's (Kafka keeps milliseconds).
	stamp := time.Now().Truncate(time.Millisecond)
	for i, it := range rows {
		preds := res.values[i*ow : (i+1)*ow]
		it.out = pipeline.AppendResult(it.out[:0], it.id, it.topic, it.partition, it.offset, p.modelJSON, res.version, preds)
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

var (
	hdrSource  = []byte(pipeline.HeaderSource)
	hdrVersion = []byte(pipeline.HeaderModelVersion)
)

// predictResult is one successful Predict: rows x width output values.
type predictResult struct {
	version int64
	values  []float32
	width   int
	latency time.Duration
}

// rejectedError is TF Serving's INVALID_ARGUMENT for rows of a sound target:
// the input, not the server, is wrong, so retrying cannot help.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return "rejected by the model: " + e.msg }

// predictRetry calls Predict until TF Serving answers, rejects the input, or
// ctx ends. Failures back off with jitter and feed the circuit breaker.
func (p *Pool) predictRetry(ctx context.Context, rows int, data []float32) (predictResult, error) {
	for attempt := 0; ; attempt++ {
		probe, err := p.breaker.acquire(ctx)
		if err != nil {
			return predictResult{}, err
		}
		t := p.Target()
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PredictTimeout)
		start := time.Now()
		res, err := p.predictOnce(pctx, t, rows, data)
		lat := time.Since(start)
		cancel()
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
		if p.tfs.Healthy() > 0 {
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

func (p *Pool) getData(n int) []float32 {
	if v, ok := p.dataPool.Get().(*[]float32); ok && cap(*v) >= n {
		return (*v)[:n]
	}
	return make([]float32, n)
}

func (p *Pool) putData(b []float32) {
	p.dataPool.Put(&b)
}
