package doctor

import (
	"strings"

	"github.com/inferops/inferops/infer/tfserving"
)

// batchingPrefix marks TF Serving's server-side batching metrics: they only
// exist when the server runs with --enable_batching.
const batchingPrefix = ":tensorflow:serving:batching_session:"

// batchingStats summarises the batching metrics: which exist, and the
// average processed batch size when the histogram has observations.
type batchingStats struct {
	Present  bool
	Names    []string
	Batches  float64 // processed batches observed
	AvgBatch float64 // records per processed batch
}

func batchingFrom(samples []tfserving.PromSample) batchingStats {
	var st batchingStats
	seen := map[string]bool{}
	var sum, count float64
	for _, s := range samples {
		if !strings.HasPrefix(s.Name, batchingPrefix) {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.Name, "_bucket"), "_sum"), "_count")
		if !seen[base] {
			seen[base] = true
			st.Names = append(st.Names, base)
		}
		switch s.Name {
		case batchingPrefix + "processed_batch_size_sum":
			sum += s.Value
		case batchingPrefix + "processed_batch_size_count":
			count += s.Value
		}
	}
	st.Present = len(st.Names) > 0
	if count > 0 {
		st.Batches, st.AvgBatch = count, sum/count
	}
	return st
}
