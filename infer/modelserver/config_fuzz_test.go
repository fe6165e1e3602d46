package modelserver

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
)

// FuzzBatchingParameters: --batching-parameters-file is outside text. What
// Validate accepts must be safe to run: the batcher is built from it (its
// queue is made up front), fed a request and closed. Seeds:
// testdata/fuzz/FuzzBatchingParameters (doctor's recommended file among
// them).
func FuzzBatchingParameters(f *testing.F) {
	f.Add([]byte("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 4 }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseBatchingParameters(data)
		if err != nil {
			return
		}
		c := Config{EnableBatching: true}
		c.SetDefaults()
		c.Batching.apply(p)
		if err := c.Batching.validate(); err != nil {
			if !strings.HasPrefix(err.Error(), "batching ") {
				t.Fatalf("error does not name the parameter: %v", err)
			}
			return
		}
		b := newBatcher(c.Batching, newMetrics(true))
		defer b.close()
		m := model.CTR(1)
		rows := min(c.Batching.MaxBatchSize, 3)
		x := make([]float32, rows*m.InputWidth())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second+c.Batching.BatchTimeout)
		defer cancel()
		if err := b.submit(ctx, m, x, make([]float32, rows*m.OutputWidth()), rows); err != nil {
			t.Fatalf("a %d-row request on valid parameters %+v: %v", rows, c.Batching, err)
		}
	})
}

// FuzzModelConfig: --model-config-file is outside text. Parsing and
// applying it must refuse what is wrong with TF Serving's messages and
// never panic; base paths are kept under a directory holding the shipped
// model so the fuzzer cannot walk the host's filesystem.
func FuzzModelConfig(f *testing.F) {
	f.Add([]byte(`model_config_list { config { name: "my_model" base_path: "my_model" model_platform: "tensorflow" model_version_policy { all {} } version_labels { key: "stable" value: 1 } } }`))
	dir := f.TempDir()
	if _, err := model.Materialize(model.Name, filepath.Join(dir, model.Name)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseModelConfig(data, dir)
		if err != nil {
			return
		}
		for _, mc := range cfg.GetModelConfigList().GetConfig() {
			if rel, err := filepath.Rel(dir, mc.GetBasePath()); err != nil || strings.HasPrefix(rel, "..") {
				return
			}
		}
		mgr := newManager(slog.New(slog.DiscardHandler), -1, newMetrics(false), false)
		defer mgr.close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = mgr.apply(ctx, cfg, true)
		for _, mc := range cfg.GetModelConfigList().GetConfig() {
			_, _ = mgr.status(mc.GetName(), 0, false)
		}
	})
}

// Found by FuzzBatchingParameters' invariant: unbounded parameters made the
// batcher's queue (a channel of max_enqueued_batches x max_batch_size) panic
// with "makechan: size out of range", or allocate gigabytes, at start; a
// batch_timeout_micros beyond int64 nanoseconds wrapped into a valid-looking
// timeout. Validate refuses them, naming the parameter.
func TestBatchingParametersBounded(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"max_batch_size { value: 1000000000 } max_enqueued_batches { value: 1000000000 }", "max_batch_size 1000000000"},
		{"max_batch_size { value: 4096 } max_enqueued_batches { value: 100000 }", "at most 1048576 rows may queue"},
		{"num_batch_threads { value: 100000000 }", "num_batch_threads 100000000"},
		{"batch_timeout_micros { value: 9223372036854775807 }", "batch_timeout_micros"},
		{"max_batch_size { value: 4294967360 }", "max_batch_size"}, // 2^32+64 must not wrap to 64
	} {
		p, err := ParseBatchingParameters([]byte(tt.file))
		if err != nil {
			t.Fatal(err)
		}
		c := Config{EnableBatching: true}
		c.SetDefaults()
		c.Batching.apply(p)
		err = c.Batching.validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.file, err, tt.want)
		}
	}
	// The flags reach the same check.
	c := Config{Batching: BatchingParameters{MaxBatchSize: 1 << 30}}
	c.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--batching-") {
		t.Fatalf("Validate with --batching-max-batch-size 2^30: %v", err)
	}
}
