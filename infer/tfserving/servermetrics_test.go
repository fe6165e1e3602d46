package tfserving_test

import (
	"context"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestMetricsWatcherAgainstServer reads the embedded model server's
// Prometheus page as --tfserving-metrics does: between two scrapes it sees
// exactly the Predicts sent, and a request for a missing version as an
// error by status.
func TestMetricsWatcherAgainstServer(t *testing.T) {
	st := stacktest.Start(t, stack.Config{Models: &modelserver.Config{}})
	c := dialT(t, st.Addrs.GRPC)
	w := tfserving.NewMetricsWatcher("http://"+st.Addrs.REST+pipeline.TFServingMetricsPath, model.Name, time.Second, nil)
	ctx := context.Background()
	w.Scrape(ctx)
	if _, err := w.View(); err != tfserving.ErrNoServerView {
		t.Fatalf("after one scrape: %v, want ErrNoServerView", err)
	}
	const n = 40
	data := make([]float32, 8*model.Width)
	for i := 0; i < n; i++ {
		if _, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Inputs: floatBatch("features", 8, model.Width, data)}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Target: tfserving.Target{Version: 99}, Inputs: floatBatch("features", 1, model.Width, data[:model.Width])})
	w.Scrape(ctx)
	v, err := w.View()
	if err != nil {
		t.Fatal(err)
	}
	if v.Count != n || v.ByStatus["OK"] != n || v.Errors != 1 || v.P99 <= 0 || v.P50 > v.P99 {
		t.Errorf("server view %+v, want %d successful Predicts and 1 error", v, n)
	}
	t.Logf("server-side: %v requests, p50 %v p99 %v, by status %v", v.Requests, v.P50, v.P99, v.ByStatus)
}
