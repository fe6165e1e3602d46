package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// startModelServer runs the embedded TF-Serving-compatible server on
// loopback port 0 with its files under t.TempDir().
func startModelServer(t *testing.T, mod func(*modelserver.Config)) *modelserver.Server {
	t.Helper()
	var cfg modelserver.Config
	if mod != nil {
		mod(&cfg)
	}
	return stacktest.Start(t, stack.Config{Models: &cfg}).Models
}

// labelledConfig serves my_model versions 1 and 2 with stable=1, canary=2,
// through TF's own --model_config_file format.
func labelledConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := model.Materialize(model.Name, filepath.Join(dir, "my_model")); err != nil {
		t.Fatal(err)
	}
	cfg := `model_config_list {
  config {
    name: "my_model"
    base_path: "my_model"
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
`
	p := filepath.Join(dir, "models.config")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckTFServingEmbedded(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*modelserver.Config)
		model string
		rest  bool
		// slo: the healthy cases use a generous one so a loaded CI machine
		// cannot turn them into WARN; the slow case uses the default 50 ms,
		// which 60 ms of injected latency always exceeds.
		slo  time.Duration
		slow bool // the probe must not PASS (WARN, or FAIL on a very loaded machine)
		want map[string]Status
		seen map[string]string
		fix  map[string]string
	}{
		{
			name: "batching on, labels, fast", rest: true, slo: 5 * time.Second,
			mod: func(c *modelserver.Config) {
				c.ModelConfigFile = labelledConfig(t)
				c.EnableBatching = true
			},
			want: map[string]Status{"tfserving.reachable": Pass, "tfserving.model": Pass, "tfserving.versions": Info,
				"tfserving.predict": Pass, "tfserving.batching": Pass},
			seen: map[string]string{"tfserving.model": "AVAILABLE: version 1, 2", "tfserving.versions": "labels canary=2, stable=1",
				"tfserving.predict": "over 50 calls", "tfserving.batching": "batches, average 1.0 records"},
		},
		{
			name: "batching off", rest: true, slo: 5 * time.Second,
			want: map[string]Status{"tfserving.model": Pass, "tfserving.batching": Warn, "tfserving.predict": Pass},
			// The shipped model's default: both versions, labelled.
			seen: map[string]string{"tfserving.versions": "1 AVAILABLE, 2 AVAILABLE; labels canary=2, stable=1", "tfserving.batching": "off"},
			fix:  map[string]string{"tfserving.batching": "--enable_batching=true --batching_parameters_file"},
		},
		{
			name: "slow model", mod: func(c *modelserver.Config) { c.InjectLatency = 60 * time.Millisecond },
			want: map[string]Status{"tfserving.batching": Info},
			seen: map[string]string{"tfserving.predict": "over 50 calls"},
			fix:  map[string]string{"tfserving.predict": "GPU"},
			slow: true,
		},
		{
			name: "the ads model's typed inputs", model: model.AdsName, slo: 5 * time.Second,
			want: map[string]Status{"tfserving.model": Pass, "tfserving.predict": Pass},
			seen: map[string]string{"tfserving.predict": "over 50 calls"},
		},
		{
			name: "a stand-in", model: "half_plus_two", slo: 5 * time.Second,
			mod: func(c *modelserver.Config) {
				c.StandIns = []modelserver.StandIn{{Name: "half_plus_two", File: filepath.Join("..", "infer", "modelserver", "testdata", "stand-in", "half_plus_two.json")}}
			},
			want: map[string]Status{"tfserving.model": Pass, "tfserving.standin": Warn, "tfserving.predict": Pass},
			seen: map[string]string{"tfserving.standin": "model half_plus_two is a stand-in (x DT_FLOAT [-1] -> y DT_FLOAT [-1])", "tfserving.model": "AVAILABLE: version 123"},
			fix:  map[string]string{"tfserving.standin": "point --tfserving at the TF Serving that serves the real half_plus_two"},
		},
		{
			name: "wrong model name", model: "my_modle",
			want: map[string]Status{"tfserving.model": Fail, "tfserving.predict": Skip},
			seen: map[string]string{"tfserving.model": "my_modle"},
			fix:  map[string]string{"tfserving.model": "--model"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startModelServer(t, tc.mod)
			o := Options{Model: tc.model, SectionTimeout: 10 * time.Second, PredictSLO: tc.slo}
			o.TF.Address = s.GRPCAddr()
			if tc.rest {
				o.TFServingREST = s.RESTAddr()
			}
			o.SetDefaults()
			ctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
			defer cancel()
			cs := CheckTFServing(ctx, o)
			for id, want := range tc.want {
				if c := find(t, cs, id); c.Status != want {
					t.Errorf("%s: %s (seen %q), want %s", id, c.Status, c.Seen, want)
				}
			}
			if p := find(t, cs, "tfserving.predict"); tc.slow && p.Status != Warn && p.Status != Fail {
				t.Errorf("slow model: probe %s %q, want WARN or FAIL", p.Status, p.Seen)
			}
			for id, s := range tc.seen {
				if c := find(t, cs, id); !strings.Contains(c.Seen, s) {
					t.Errorf("%s: seen %q lacks %q", id, c.Seen, s)
				}
			}
			for id, s := range tc.fix {
				if c := find(t, cs, id); !strings.Contains(c.Fix, s) {
					t.Errorf("%s: fix %q lacks %q", id, c.Fix, s)
				}
			}
			if t.Failed() {
				var b strings.Builder
				NewReport(cs).WriteText(&b, false)
				t.Log("\n" + b.String())
			}
		})
	}
}

func TestCheckTFServingUnreachable(t *testing.T) {
	down := closedPort(t)
	for _, embedded := range []bool{false, true} {
		o := Options{}
		o.TF.Address = down
		o.TFServingREST = closedPort(t)
		o.SetDefaults()
		o.embeddedTF = embedded
		cs := CheckTFServing(context.Background(), o)
		c := find(t, cs, "tfserving.reachable")
		want := "check --tfserving"
		if embedded {
			want = "'make run' or 'inferops serve'"
		}
		if c.Status != Fail || !strings.Contains(c.Seen, "connection refused") || !strings.Contains(c.Fix, want) {
			t.Errorf("embedded=%v: %+v", embedded, c)
		}
		if b := find(t, cs, "tfserving.batching"); b.Status != Info || !strings.Contains(b.Seen, "unreachable") {
			t.Errorf("batching with REST down: %+v", b)
		}
	}
}

// The REST port is HTTP/1, not gRPC: pointing --tfserving at it must read
// as an API problem, not a hang or a missing model.
func TestCheckTFServingWrongPort(t *testing.T) {
	s := startModelServer(t, nil)
	o := Options{SectionTimeout: 5 * time.Second}
	o.TF.Address = s.RESTAddr()
	o.SetDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
	defer cancel()
	c := find(t, CheckTFServing(ctx, o), "tfserving.protocol")
	if c.Status != Fail || !strings.Contains(c.Fix, "not the REST port") {
		t.Fatalf("got %+v", c)
	}
}

// What --print tfserving-batching writes must load in the model server's
// reader of TF's BatchingParameters text format.
func TestRecommendedBatchingLoads(t *testing.T) {
	text, err := Recommended("tfserving-batching")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "batching_config.txt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	bp, err := modelserver.ReadBatchingParametersFile(p)
	if err != nil {
		t.Fatalf("printed file does not parse as BatchingParameters: %v\n%s", err, text)
	}
	if bp.GetMaxBatchSize().GetValue() != SeedMaxBatchSize || bp.GetBatchTimeoutMicros().GetValue() != SeedBatchTimeoutMicro {
		t.Fatalf("parsed %v", bp)
	}
	// And a server starts with it.
	startModelServer(t, func(c *modelserver.Config) { c.EnableBatching, c.BatchingParametersFile = true, p })
}
