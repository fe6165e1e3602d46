package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeFault runs `inferops serve --fault` and sends Predicts: v2 fails
// every call with the injected fault's message and v1 answers; the start-up
// log warns that the server misbehaves on purpose.
func TestServeFault(t *testing.T) {
	bin := inferopsBinary(t)
	f, stop := startServeStop(t, bin, nil, "--ephemeral",
		"--fault", "my_model/2:errors=100%,code=internal", "--fault", "ads_ctr/*:latency=1ms")
	body := `{"instances": [[` + strings.TrimSuffix(strings.Repeat("0.25,", 32), ",") + `]]}`
	post := func(v string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+f["rest"]+"/v1/models/my_model/versions/"+v+":predict", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, resp := post("2"); code != 500 || !strings.Contains(resp, "injected fault: my_model v2 fails 100% of Predict calls on purpose (inferops serve --fault my_model/2:errors=100%,code=internal)") {
		t.Errorf("faulty v2: %d %s", code, resp)
	}
	if code, resp := post("1"); code != 200 {
		t.Errorf("v1 beside the faulty v2: %d %s", code, resp)
	}
	logs := stop()
	if !strings.Contains(logs, `"level":"WARN","msg":"injecting faults on purpose`) || !strings.Contains(logs, `"faults":"my_model/2:errors=100%,code=internal ads_ctr/*:latency=1ms"`) {
		t.Errorf("no start-up warning listing the faults:\n%s", logs)
	}
}

// Bad --fault values are usage errors (exit 2) found before anything
// starts, and the environment cannot set one.
func TestServeFaultErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no version", []string{"--fault", "my_model"}, `--fault "my_model": no KEY=VALUE after the model (want MODEL/VERSION:KEY=VALUE`},
		{"bad version", []string{"--fault", "my_model/x:latency=5ms"}, `version "x" is not a version number`},
		{"no unit", []string{"--fault", "my_model/2:latency=5"}, "latency=5 is not a duration with a unit"},
		{"over 100%", []string{"--fault", "my_model/2:errors=150%"}, "errors=150%: want 0% to 100%"},
		{"unknown key", []string{"--fault", "my_model/2:jitter=5ms"}, `unknown key "jitter"`},
		{"twice for a version", []string{"--fault", "my_model/2:latency=5ms", "--fault", "my_model/2:errors=5%"}, "a second fault for my_model/2"},
		{"without the model server", []string{"--model-server=false", "--fault", "my_model/2:latency=5ms"}, "--fault needs the embedded model server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := runCmd(ctx, "serve", append([]string{"--ephemeral", "--config="}, tt.args...), &out, &errOut)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("serve %v = %v, want a usage error saying %q", tt.args, err, tt.msg)
			}
			if strings.Contains(out.String(), "ready") {
				t.Errorf("started despite the bad flag:\n%s", out.String())
			}
		})
	}
	// A fault is a drill: INFEROPS_FAULT left in an environment is ignored
	// (with a warning) rather than breaking a server.
	t.Setenv("INFEROPS_FAULT", "my_model/2:errors=100%")
	f, _ := newServeFlags(t)
	var warn bytes.Buffer
	f.SetOutput(&warn)
	if err := f.parse([]string{"--config="}); err != nil {
		t.Fatal(err)
	}
	if v := f.Lookup("fault").Value.String(); v != "" || !strings.Contains(warn.String(), "ignoring --fault from env INFEROPS_FAULT") {
		t.Errorf("--fault from the environment: %q; warning %q", v, warn.String())
	}
}

func newServeFlags(t *testing.T) (*cmdFlags, runFunc) {
	t.Helper()
	c, ok := lookup("serve")
	if !ok {
		t.Fatal("no serve command")
	}
	return c.setup()
}
