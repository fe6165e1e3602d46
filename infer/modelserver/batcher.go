package modelserver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferops/inferops/infer/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// task is one request's rows waiting to be batched.
type task struct {
	model    *model.Model
	x        []float32 // rows × InputWidth
	out      []float32 // rows × OutputWidth, filled by the batch
	rows     int
	enqueued time.Time
	done     chan error
}

// batcher merges concurrent requests for the same model version into
// batches of up to MaxBatchSize rows, like TF's BasicBatchScheduler: a batch
// closes when full or BatchTimeout after its first task, and NumBatchThreads
// batches run in parallel. The queue holds MaxEnqueuedBatches full batches'
// worth of rows; beyond that requests are rejected with UNAVAILABLE.
type batcher struct {
	p       BatchingParameters
	metrics *metrics
	queued  atomic.Int64 // rows submitted and not yet running
	in      chan *task
	ready   chan []*task
	stop    chan struct{}
	wg      sync.WaitGroup
	bufs    sync.Pool // *[]float32 for merged inputs and outputs
}

func newBatcher(p BatchingParameters, m *metrics) *batcher {
	b := &batcher{
		p:       p,
		metrics: m,
		in:      make(chan *task, p.MaxEnqueuedBatches*p.MaxBatchSize),
		ready:   make(chan []*task, p.MaxEnqueuedBatches),
		stop:    make(chan struct{}),
	}
	b.wg.Add(1 + p.NumBatchThreads)
	go b.form()
	for range p.NumBatchThreads {
		go b.run()
	}
	return b
}

// close stops the batcher; queued tasks are failed, never dropped silently.
func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
	for {
		select {
		case t := <-b.in:
			t.done <- status.Error(codes.Unavailable, "model server is shutting down")
		default:
			return
		}
	}
}

// submit queues rows and waits for the batch that ran them.
func (b *batcher) submit(ctx context.Context, m *model.Model, x, out []float32, rows int) error {
	if rows > b.p.MaxBatchSize && !b.p.EnableLargeBatchSplitting {
		return status.Errorf(codes.InvalidArgument, "Task size %d is larger than maximum input batch size %d", rows, b.p.MaxBatchSize)
	}
	b.metrics.submitted(rows)
	// Split oversized requests into MaxBatchSize pieces, each its own task.
	in, ow := m.InputWidth(), m.OutputWidth()
	var tasks []*task
	for off := 0; off < rows; off += b.p.MaxBatchSize {
		n := min(b.p.MaxBatchSize, rows-off)
		t := &task{model: m, x: x[off*in : (off+n)*in], out: out[off*ow : (off+n)*ow], rows: n, enqueued: time.Now(), done: make(chan error, 1)}
		full := b.queued.Add(int64(n)) > int64(b.p.MaxEnqueuedBatches*b.p.MaxBatchSize)
		if !full {
			select {
			case b.in <- t:
				tasks = append(tasks, t)
			default:
				full = true
			}
		}
		if full {
			b.queued.Add(-int64(n))
			// Tasks already queued still run; their results are discarded.
			return status.Error(codes.Unavailable, "The batch scheduling queue to which this task was submitted is full")
		}
	}
	for _, t := range tasks {
		select {
		case err := <-t.done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

// form is the one goroutine that turns the task stream into batches.
func (b *batcher) form() {
	defer b.wg.Done()
	var carry *task
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.in:
			case <-b.stop:
				return
			}
		}
		batch := []*task{first}
		rows := first.rows
		if b.p.BatchTimeout > 0 {
			timer.Reset(b.p.BatchTimeout)
		}
	fill:
		for rows < b.p.MaxBatchSize {
			var t *task
			if b.p.BatchTimeout > 0 {
				select {
				case t = <-b.in:
				case <-timer.C:
					break fill
				case <-b.stop:
					b.failAll(batch)
					return
				}
			} else {
				// Timeout 0: take only what is already waiting.
				select {
				case t = <-b.in:
				default:
					break fill
				}
			}
			if t.model != first.model || rows+t.rows > b.p.MaxBatchSize {
				carry = t
				break
			}
			batch = append(batch, t)
			rows += t.rows
		}
		if b.p.BatchTimeout > 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		select {
		case b.ready <- batch:
		case <-b.stop:
			b.failAll(batch)
			if carry != nil {
				carry.done <- status.Error(codes.Unavailable, "model server is shutting down")
			}
			return
		}
	}
}

func (b *batcher) failAll(batch []*task) {
	for _, t := range batch {
		t.done <- status.Error(codes.Unavailable, "model server is shutting down")
	}
}

// run executes batches: inputs are copied into one pooled buffer, padded to
// the next allowed batch size, run in one Predict call and split back.
func (b *batcher) run() {
	defer b.wg.Done()
	for {
		var batch []*task
		select {
		case batch = <-b.ready:
		case <-b.stop:
			return
		}
		b.execute(batch)
	}
}

func (b *batcher) execute(batch []*task) {
	m := batch[0].model
	in, ow := m.InputWidth(), m.OutputWidth()
	rows := 0
	now := time.Now()
	for _, t := range batch {
		rows += t.rows
		b.queued.Add(-int64(t.rows))
		b.metrics.queuingLatency.WithLabelValues(b.p.ThreadPoolName).Observe(micros(now.Sub(t.enqueued)))
	}
	padded := rows
	for _, s := range b.p.AllowedBatchSizes {
		if s >= rows {
			padded = s
			break
		}
	}
	need := padded*in + padded*ow
	bp, _ := b.bufs.Get().(*[]float32)
	if bp == nil || cap(*bp) < need {
		buf := make([]float32, need)
		bp = &buf
	}
	buf := (*bp)[:need]
	x, out := buf[:padded*in], buf[padded*in:]
	off := 0
	for _, t := range batch {
		off += copy(x[off:], t.x)
	}
	clear(x[off:]) // padding rows are zeros
	err := m.Predict(out, x, padded)
	b.metrics.ran(rows, padded)
	off = 0
	for _, t := range batch {
		if err == nil {
			copy(t.out, out[off*ow:(off+t.rows)*ow])
		}
		off += t.rows
		if err != nil {
			t.done <- status.Errorf(codes.Internal, "run batch: %v", err)
		} else {
			t.done <- nil
		}
	}
	b.bufs.Put(bp)
}
