package doctor

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
func labelledConfig(t *testing.T) string { return labelledConfigWith(t, 1, 2) }

func labelledConfigWith(t *testing.T, stable, canary int) string {
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
    version_labels { key: "stable" value: ` + strconv.Itoa(stable) + ` }
    version_labels { key: "canary" value: ` + strconv.Itoa(canary) + ` }
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
			if p := find(t, cs, "tfserving.predict"); tc.slow && p.Status != Warn && p.Status != Fail {
				t.Errorf("slow model: probe %s %q, want WARN or FAIL", p.Status, p.Seen)
			}
			wantChecks(t, cs, tc.want, tc.seen, tc.fix)
		})
	}
}

// TestCheckTFServingFleet: with --tfserving naming several hosts every
// host gets its own checks, named after it, and the hosts are compared:
// versions that differ are a WARN naming the odd host, a label meaning
// different versions a FAIL, a host that is down its own FAIL.
func TestCheckTFServingFleet(t *testing.T) {
	v1only := func(c *modelserver.Config) {
		base := filepath.Join(t.TempDir(), "my_model")
		if _, err := model.Materialize(model.Name, base); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(base, "2")); err != nil {
			t.Fatal(err)
		}
		c.DataDir, c.ModelBasePath = "", base
	}
	labels := func(stable int) func(*modelserver.Config) {
		return func(c *modelserver.Config) { c.DataDir, c.ModelConfigFile = "", labelledConfigWith(t, stable, 2) }
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	tests := []struct {
		name     string
		hosts    []func(*modelserver.Config)
		dead     bool
		skew     Status
		skewSeen []int // indexes of the hosts the skew check must name
	}{
		{name: "hosts agree", hosts: []func(*modelserver.Config){nil, nil}, skew: Pass},
		{name: "one host serves only v1", hosts: []func(*modelserver.Config){nil, nil, v1only}, skew: Warn, skewSeen: []int{2}},
		{name: "stable means different versions", hosts: []func(*modelserver.Config){labels(1), labels(1), labels(2)}, skew: Fail, skewSeen: []int{2}},
		{name: "one host down", hosts: []func(*modelserver.Config){nil, nil}, dead: true, skew: Pass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []string
			for _, mod := range tc.hosts {
				addrs = append(addrs, startModelServer(t, mod).GRPCAddr())
			}
			if tc.dead {
				addrs = append(addrs, dead)
			}
			o := Options{SectionTimeout: 10 * time.Second}
			o.TF.Address = strings.Join(addrs, ",")
			o.SetDefaults()
			ctx, cancel := context.WithTimeout(context.Background(), o.SectionTimeout)
			defer cancel()
			cs := CheckTFServing(ctx, o)
			for _, a := range addrs {
				var reach *Check
				for i := range cs {
					if cs[i].ID == "tfserving.reachable" && cs[i].Host == a {
						reach = &cs[i]
					}
				}
				want := Pass
				if a == dead {
					want = Fail
				}
				if reach == nil || reach.Status != want || !strings.Contains(reach.Name, a) {
					t.Errorf("host %s: reachable check %+v, want %s naming the host", a, reach, want)
				}
			}
			sk := find(t, cs, "tfserving.skew")
			if sk.Status != tc.skew {
				t.Errorf("skew %s (%q), want %s", sk.Status, sk.Seen, tc.skew)
			}
			for _, i := range tc.skewSeen {
				if !strings.Contains(sk.Seen, addrs[i]) || !strings.Contains(sk.Fix, addrs[i]) {
					t.Errorf("skew check does not name %s: seen %q, fix %q", addrs[i], sk.Seen, sk.Fix)
				}
			}
			logReportIfFailed(t, cs)
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
