package doctor

import (
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tfserving"
)

// A page in the shape TF Serving 2.12's exporter writes (names sanitised
// with ':', histograms as _bucket/_sum/_count).
const tfServingPage = `# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="my_model",status="OK"} 1200
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{API="predict",entrypoint="GRPC",model_name="my_model",le="10"} 0
:tensorflow:serving:request_latency_bucket{API="predict",entrypoint="GRPC",model_name="my_model",le="+Inf"} 1200
:tensorflow:serving:request_latency_sum{API="predict",entrypoint="GRPC",model_name="my_model"} 3.6e+06
:tensorflow:serving:request_latency_count{API="predict",entrypoint="GRPC",model_name="my_model"} 1200
# TYPE :tensorflow:serving:batching_session:processed_batch_size histogram
:tensorflow:serving:batching_session:processed_batch_size_bucket{le="64"} 40
:tensorflow:serving:batching_session:processed_batch_size_bucket{le="+Inf"} 40
:tensorflow:serving:batching_session:processed_batch_size_sum 1200
:tensorflow:serving:batching_session:processed_batch_size_count 40
# TYPE :tensorflow:serving:batching_session:wrapped_run_count counter
:tensorflow:serving:batching_session:wrapped_run_count 40
`

func TestBatchingFrom(t *testing.T) {
	tests := []struct {
		name     string
		page     string
		present  bool
		avg      float64
		nSamples int
	}{
		{name: "batching on", page: tfServingPage, present: true, avg: 30, nSamples: 10},
		{name: "batching off", page: strings.Join(strings.Split(tfServingPage, "\n")[:7], "\n"), nSamples: 5},
		{name: "batching on, no batches yet", page: ":tensorflow:serving:batching_session:wrapped_run_count 0\n", present: true, nSamples: 1},
		{name: "empty page", page: "", nSamples: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tfserving.ParsePromText(strings.NewReader(tc.page))
			if err != nil {
				t.Fatal(err)
			}
			if len(s) != tc.nSamples {
				t.Fatalf("%d samples, want %d: %+v", len(s), tc.nSamples, s)
			}
			st := batchingFrom(s)
			if st.Present != tc.present || st.AvgBatch != tc.avg {
				t.Fatalf("batching %+v, want present=%v avg=%v", st, tc.present, tc.avg)
			}
		})
	}
}
