package modelserver

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestParseFault(t *testing.T) {
	good := []struct {
		spec string
		want Fault
	}{
		{"my_model/2:latency=50ms", Fault{Model: "my_model", Version: 2, Latency: 50 * time.Millisecond}},
		{"my_model/2:errors=5%", Fault{Model: "my_model", Version: 2, Errors: 0.05}},
		{"my_model/2:latency=50ms,errors=5%", Fault{Model: "my_model", Version: 2, Latency: 50 * time.Millisecond, Errors: 0.05}},
		{"ads_ctr/*:errors=100%", Fault{Model: "ads_ctr", Errors: 1}},
		{"my_model/1: errors=0.5% , latency=1s", Fault{Model: "my_model", Version: 1, Latency: time.Second, Errors: 0.005}},
		{"my_model/2:errors=5%,code=internal", Fault{Model: "my_model", Version: 2, Errors: 0.05, Code: codes.Internal}},
		{"my_model/2:errors=5%,code=RESOURCE_EXHAUSTED", Fault{Model: "my_model", Version: 2, Errors: 0.05, Code: codes.ResourceExhausted}},
	}
	for _, tt := range good {
		f, err := ParseFault(tt.spec)
		if err != nil || f != tt.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", tt.spec, f, err, tt.want)
			continue
		}
		if again, err := ParseFault(f.String()); err != nil || again != f {
			t.Errorf("%q: String %q reads back as %+v, %v", tt.spec, f.String(), again, err)
		}
	}
	bad := []struct{ spec, msg string }{
		{"my_model", "no KEY=VALUE"},
		{"my_model:latency=5ms", "give MODEL/VERSION, e.g. my_model/2"},
		{"my_model/x:latency=5ms", `version "x" is not a version number`},
		{"my_model/0:latency=5ms", `version "0"`},
		{"my_model/2:latency=5", "latency=5 is not a duration with a unit"},
		{"my_model/2:latency=-5ms", "latency=-5ms: want 0 to 1m0s"},
		{"my_model/2:latency=2m", "want 0 to 1m0s"},
		{"my_model/2:errors=150%", "errors=150%: want 0% to 100%"},
		{"my_model/2:errors=0.05", "errors=0.05 is not a percentage"},
		{"my_model/2:errors=NaN%", "want 0% to 100%"},
		{"my_model/2:jitter=5ms", `unknown key "jitter"`},
		{"my_model/2:latency=5ms,latency=6ms", "latency is given twice"},
		{"my_model/2:latency", `"latency" is not KEY=VALUE`},
		{"my_model/2:", `"" is not KEY=VALUE`},
		{"my_model/2:latency=0s", "does nothing"},
		{"my_model/2:errors=5%,code=ok", "code=ok is not a gRPC error code"},
		{"my_model/2:errors=5%,code=broken", "code=broken is not a gRPC error code"},
		{"my_model/2:latency=5ms,code=internal", "code=internal needs errors="},
		{"my model/2:latency=5ms", "a model name is letters"},
	}
	for _, tt := range bad {
		_, err := ParseFault(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), fmt.Sprintf("--fault %q: ", tt.spec)) {
			t.Errorf("ParseFault(%q) = %v; want an error naming the flag and saying %q", tt.spec, err, tt.msg)
		}
		// Syntax errors teach the form; range errors are clear without it.
		if err != nil && strings.Contains(err.Error(), "is not") && !strings.Contains(err.Error(), "e.g. --fault my_model/2:latency=50ms,errors=5%") {
			t.Errorf("ParseFault(%q) = %v: no example of the form", tt.spec, err)
		}
	}
}

func TestConfigValidateFaults(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults []Fault
		msg    string
	}{
		{"two faults for one version", []Fault{{Model: "my_model", Version: 2, Latency: time.Millisecond}, {Model: "my_model", Version: 2, Errors: 0.1}},
			"--fault my_model/2:errors=10%: a second fault for my_model/2: put every key in one spec"},
		{"errors over 1", []Fault{{Model: "my_model", Errors: 1.5}}, "errors=150%: want 0% to 100%"},
		{"negative version", []Fault{{Model: "my_model", Version: -1, Errors: 0.1}}, "version -1"},
		{"no effect", []Fault{{Model: "my_model", Version: 1}}, "does nothing"},
	} {
		c := Config{Faults: tt.faults}
		c.SetDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.msg)
		}
	}
	// A wildcard and a version of the same model may both be given.
	c := Config{Faults: []Fault{{Model: "my_model", Latency: time.Millisecond}, {Model: "my_model", Version: 2, Errors: 0.1}}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("wildcard and version: %v", err)
	}
	// A fault for a model nobody serves would make a drill pass for the
	// wrong reason.
	_, err := Start(context.Background(), Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Faults: []Fault{{Model: "my_modle", Version: 2, Errors: 0.1}}})
	if err == nil || !strings.Contains(err.Error(), `--fault my_modle/2:errors=10%: no model "my_modle" is served (served: ads_ctr, my_model)`) {
		t.Fatalf("fault for an unknown model: %v", err)
	}
}

// predictVersion is one batch-1 Predict of my_model pinned to version v.
func predictVersion(v int64) *tfpb.PredictRequest {
	return &tfpb.PredictRequest{
		ModelSpec: &tfpb.ModelSpec{Name: model.Name, VersionChoice: &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(v)}},
		Inputs:    map[string]*tfpb.TensorProto{"features": floatProto(1, 32, features(1))},
	}
}

// A latency fault on v2 slows every Predict of v2, on gRPC and REST, and
// leaves v1 alone. These are correctness bounds (the delay is there, and
// not on the other version), not speed targets.
func TestFaultLatencyOneVersion(t *testing.T) {
	const inject = 50 * time.Millisecond
	s := startServer(t, Config{Faults: []Fault{{Model: model.Name, Version: 2, Latency: inject}}})
	pc, _ := rawClients(t, s)
	ctx := context.Background()
	timed := func(call func() error) time.Duration {
		t.Helper()
		start := time.Now()
		if err := call(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	grpcCall := func(v int64) func() error {
		return func() error { _, err := pc.Predict(ctx, predictVersion(v)); return err }
	}
	restCall := func(v int64) func() error {
		return func() error {
			url := fmt.Sprintf("http://%s/v1/models/my_model/versions/%d:predict", s.RESTAddr(), v)
			if code, body, _ := httpDo(t, "POST", url, `{"instances": [`+jsonFloats(features(1))+`]}`, nil); code != 200 {
				return fmt.Errorf("REST v%d: %d %s", v, code, body)
			}
			return nil
		}
	}
	for _, api := range []struct {
		name string
		call func(int64) func() error
	}{{"gRPC", grpcCall}, {"REST", restCall}} {
		fastest := time.Hour // of v1: one slow call on a busy machine is not the fault
		for range 5 {
			if d := timed(api.call(2)); d < inject {
				t.Errorf("%s v2 took %v, less than the injected %v", api.name, d, inject)
			}
			fastest = min(fastest, timed(api.call(1)))
		}
		if fastest >= inject {
			t.Errorf("%s v1 took at least %v: the fault on v2 reached v1", api.name, fastest)
		}
	}
	// A cancelled call stops waiting: its status is the deadline's.
	short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	if _, err := pc.Predict(short, predictVersion(2)); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("v2 under a 5ms deadline: %v", err)
	}
	if n := scrape(t, s)[`:tensorflow:serving:inferops_injected_faults_total{kind="latency",model_name="my_model",version="2"}`]; n < 10 {
		t.Errorf("injected latency counted %v times, want at least 10", n)
	}
}

// errors=5% fails 5% (within 2 points) of v2's Predict calls with
// UNAVAILABLE and a message naming the flag, REST with 503, and no call of
// v1; the version still reports AVAILABLE, as a real failing model does.
func TestFaultErrorsOneVersion(t *testing.T) {
	s := startServer(t, Config{Faults: []Fault{{Model: model.Name, Version: 2, Errors: 0.05}}})
	pc, mc := rawClients(t, s)
	ctx := context.Background()
	const n = 2000
	failed := map[int64]int{}
	for _, v := range []int64{1, 2} {
		for range n {
			_, err := pc.Predict(ctx, predictVersion(v))
			if err == nil {
				continue
			}
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "injected fault: my_model v2 fails 5% of Predict calls on purpose (inferops serve --fault my_model/2:errors=5%)") {
				t.Fatalf("v%d: %v", v, err)
			}
			failed[v]++
		}
	}
	if share := float64(failed[2]) / n; math.Abs(share-0.05) > 0.02 || failed[1] != 0 {
		t.Errorf("failed v1 %d, v2 %d of %d each: want none of v1 and 5%%±2%% of v2", failed[1], failed[2], n)
	}
	t.Logf("errors=5%%: %d of %d v2 calls failed (%.2f%%)", failed[2], n, 100*float64(failed[2])/n)
	if got := scrape(t, s)[`:tensorflow:serving:inferops_injected_faults_total{kind="error",model_name="my_model",version="2"}`]; got != float64(failed[2]) {
		t.Errorf("injected errors counted %v, %d failed", got, failed[2])
	}

	// REST: the same fault, 503 and the message.
	url := "http://" + s.RESTAddr() + "/v1/models/my_model/versions/2:predict"
	body := `{"instances": [` + jsonFloats(features(1)) + `]}`
	got503 := 0
	for range 400 {
		code, resp, _ := httpDo(t, "POST", url, body, nil)
		switch {
		case code == 503 && strings.Contains(resp, "injected fault") && strings.Contains(resp, "--fault my_model/2:errors=5%"):
			got503++
		case code != 200:
			t.Fatalf("REST v2: %d %s", code, resp)
		}
	}
	if got503 == 0 || got503 > 40 {
		t.Errorf("REST: %d of 400 calls got 503, want about 20", got503)
	}

	// Status and metadata are not Predict: the version is AVAILABLE.
	st, err := mc.GetModelStatus(ctx, &tfpb.GetModelStatusRequest{ModelSpec: predictVersion(2).ModelSpec})
	if err != nil || st.GetModelVersionStatus()[0].GetState() != tfpb.ModelVersionStatus_AVAILABLE {
		t.Errorf("status of the faulty v2: %v %v", st, err)
	}
	if code, resp, _ := httpDo(t, "GET", "http://"+s.RESTAddr()+"/v1/models/my_model/versions/2/metadata", "", nil); code != 200 {
		t.Errorf("metadata of the faulty v2: %d %s", code, resp)
	}
}

// A wildcard fault reaches every version of its model and nothing else.
func TestFaultEveryVersion(t *testing.T) {
	s := startServer(t, Config{Faults: []Fault{{Model: model.Name, Errors: 1}}})
	pc, _ := rawClients(t, s)
	ctx := context.Background()
	for _, v := range []int64{1, 2} {
		if _, err := pc.Predict(ctx, predictVersion(v)); status.Code(err) != codes.Unavailable {
			t.Errorf("my_model v%d under my_model/*:errors=100%%: %v", v, err)
		}
	}
	if _, err := dial(t, s).Predict(ctx, tfserving.PredictRequest{Model: model.AdsName, Inputs: adsBatch()}); err != nil {
		t.Errorf("ads_ctr under a fault of my_model: %v", err)
	}
}

// The failing calls are spread, not every 20th: a retried call fails again
// about as often as any call, so retries do not hide the fault entirely.
func TestFaultCallsSpread(t *testing.T) {
	f := newFaults([]Fault{{Model: model.Name, Version: 2, Errors: 0.05}})[0]
	fails, pairs := 0, 0
	prev := false
	for n := uint64(1); n <= 100000; n++ {
		cur := f.fails(n)
		if cur {
			fails++
			if prev {
				pairs++
			}
		}
		prev = cur
	}
	if fails < 4800 || fails > 5200 || pairs == 0 {
		t.Errorf("%d of 100000 fail, %d right after another: want about 5000 and some in a row", fails, pairs)
	}
}

// code= picks the failures' status: INTERNAL is 500 on REST, and our
// client, which retries UNAVAILABLE (3 attempts), shows every INTERNAL
// failure but hides most UNAVAILABLE ones.
func TestFaultCode(t *testing.T) {
	s := startServer(t, Config{Faults: []Fault{
		{Model: model.Name, Version: 1, Errors: 0.2},
		{Model: model.Name, Version: 2, Errors: 0.2, Code: codes.Internal},
	}})
	c := dial(t, s)
	ctx := context.Background()
	const n = 500
	failed := map[int64]int{}
	for _, v := range []int64{1, 2} {
		for range n {
			_, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.Name, Target: tfserving.Target{Version: v}, Inputs: floatBatch("features", 1, 32, features(1))})
			if err != nil {
				failed[v]++
			}
		}
	}
	t.Logf("errors=20%% through the client's retries: UNAVAILABLE %d, INTERNAL %d of %d", failed[1], failed[2], n)
	if share := float64(failed[2]) / n; math.Abs(share-0.2) > 0.05 || failed[1] > failed[2]/4 {
		t.Errorf("client saw %d UNAVAILABLE and %d INTERNAL failures of %d each: want about 1%% and 20%%", failed[1], failed[2], n)
	}
	url := "http://" + s.RESTAddr() + "/v1/models/my_model/versions/2:predict"
	body := `{"instances": [` + jsonFloats(features(1)) + `]}`
	for range 100 {
		code, resp, _ := httpDo(t, "POST", url, body, nil)
		if code == 500 && strings.Contains(resp, "--fault my_model/2:errors=20%,code=internal") {
			return
		}
		if code != 200 {
			t.Fatalf("REST v2: %d %s", code, resp)
		}
	}
	t.Error("no REST call of 100 got the injected 500")
}
