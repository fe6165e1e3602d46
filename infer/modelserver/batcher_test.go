package modelserver

import (
	"context"
	"sync"
	"testing"

	"github.com/inferops/inferops/infer/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// slowModel is a real network big enough (4 × 1024² weights, ~4 M
// multiply-adds a row) that a one-slot queue fills while it runs.
func slowModel(t *testing.T) *model.Model {
	t.Helper()
	const w = 1024
	layer := func(act model.Activation) model.Layer {
		l := model.Layer{In: w, Out: w, Act: act, W: make([]float32, w*w), B: make([]float32, w)}
		for i := range l.W {
			l.W[i] = float32(i%7) / 7e3
		}
		return l
	}
	m, err := model.New([]model.Input{model.DenseInput("features", w)}, []model.Output{{Name: "score", Width: w}}, []model.Layer{layer(model.ReLU), layer(model.ReLU), layer(model.ReLU), layer(model.Sigmoid)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBatcherQueueFull(t *testing.T) {
	p := BatchingParameters{MaxBatchSize: 1, MaxEnqueuedBatches: 1, NumBatchThreads: 1, BatchTimeout: 0, ThreadPoolName: "t"}
	b := newBatcher(p, newMetrics(true))
	defer b.close()
	m := slowModel(t)
	const n = 24
	var wg sync.WaitGroup
	results := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, out := make([]float32, m.InputWidth()), make([]float32, m.OutputWidth())
			x[0] = 1
			err := b.submit(context.Background(), m, x, out, 1)
			if err == nil && (out[0] <= 0 || out[0] >= 1) {
				err = status.Errorf(codes.Internal, "bad output %v", out[0])
			}
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	var ok, full int
	for err := range results {
		switch {
		case err == nil:
			ok++
		case status.Code(err) == codes.Unavailable:
			full++
		default:
			t.Fatal(err)
		}
	}
	// At most one running, one formed, one forming and one queued succeed.
	if ok == 0 || full == 0 || ok+full != n {
		t.Fatalf("%d served, %d rejected with UNAVAILABLE: want both", ok, full)
	}
	t.Logf("%d served, %d rejected (queue full)", ok, full)
}
