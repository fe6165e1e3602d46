package tfserving

import (
	"math"
	"strings"
	"testing"
	"time"
)

// A page in the shape TF Serving 2.12's exporter writes: names sanitised
// with ':', histograms as _bucket/_sum/_count, buckets 10*1.8^k us.
const page = `# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="my_model",status="OK"} 1200
:tensorflow:serving:request_count{model_name="my_model",status="NOT_FOUND"} 3
:tensorflow:serving:request_count{model_name="other",status="OK"} 99
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{API="Predict",entrypoint="GRPC",model_name="my_model",le="100"} 0
:tensorflow:serving:request_latency_bucket{API="Predict",entrypoint="GRPC",model_name="my_model",le="180"} 600
:tensorflow:serving:request_latency_bucket{API="Predict",entrypoint="GRPC",model_name="my_model",le="324"} 1100
:tensorflow:serving:request_latency_bucket{API="Predict",entrypoint="GRPC",model_name="my_model",le="+Inf"} 1200
:tensorflow:serving:request_latency_sum{API="Predict",entrypoint="GRPC",model_name="my_model"} 240000
:tensorflow:serving:request_latency_count{API="Predict",entrypoint="GRPC",model_name="my_model"} 1200
`

func TestParsePromText(t *testing.T) {
	tests := []struct {
		name     string
		page     string
		wantErr  string
		nSamples int
	}{
		{name: "TF Serving page", page: page, nSamples: 9},
		{name: "empty page", page: "", nSamples: 0},
		{name: "label value with spaces and braces", page: `m{a="x y}"} 2` + "\n", nSamples: 1},
		{name: "value missing", page: "m{a=\"b\"}\n", wantErr: "no value"},
		{name: "value not a number", page: "m 12abc\n", wantErr: "12abc"},
		{name: "not a metric name", page: "} 0\n", wantErr: "not a metric name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParsePromText(strings.NewReader(tc.page))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s) != tc.nSamples {
				t.Fatalf("%d samples, want %d: %+v", len(s), tc.nSamples, s)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	s := PromSample{Labels: `API="Predict", model_name="my \"m\"",le="+Inf"`}
	for k, want := range map[string]string{"API": "Predict", "model_name": `my "m"`, "le": "+Inf", "status": ""} {
		if got := s.Label(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestServerViewOf(t *testing.T) {
	s, err := ParsePromText(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	prev := ServerCounters{Time: t0, ByStatus: map[string]float64{}}
	cur := ServerCountersOf(s, "my_model", t0.Add(2*time.Second))
	v := ServerViewOf(prev, cur)
	if v.Requests != 1203 || v.Errors != 3 || v.Count != 1200 || v.RPS() != 601.5 {
		t.Errorf("view %+v", v)
	}
	// 600 of 1200 at or under 180 us: p50 is the bucket's bound; p95 lies
	// in (324, +Inf), reported as 324 us, the largest finite bound.
	if v.P50 != 180*time.Microsecond || v.P95 != 324*time.Microsecond || v.Mean != 200*time.Microsecond {
		t.Errorf("p50 %v p95 %v mean %v", v.P50, v.P95, v.Mean)
	}
	// A restart (counters went down) counts the later scrape alone.
	later := cur
	later.Time = cur.Time.Add(time.Second)
	later.Count, later.ByStatus = 10, map[string]float64{"OK": 10}
	later.Buckets = []LatencyBucket{{LE: 180, Count: 10}, {LE: math.Inf(1), Count: 10}}
	if r := ServerViewOf(cur, later); r.Requests != 10 || r.Count != 10 {
		t.Errorf("after a restart: %+v", r)
	}
}

func FuzzParsePromText(f *testing.F) {
	f.Add(page)
	f.Add(`m{a="x\"}"} 1e3` + "\n# c\n")
	f.Fuzz(func(t *testing.T, p string) {
		s, err := ParsePromText(strings.NewReader(p))
		if err != nil {
			return
		}
		c := ServerCountersOf(s, "my_model", time.Unix(2, 0))
		_ = ServerViewOf(ServerCounters{Time: time.Unix(1, 0)}, c)
		for _, x := range s {
			if !validMetricName(x.Name) {
				t.Fatalf("accepted the sample name %q", x.Name)
			}
			_ = x.Label("model_name")
		}
	})
}
