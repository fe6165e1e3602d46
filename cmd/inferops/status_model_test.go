package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// runModelSection parses args with the model section's flags (plus
// --brokers, as status has) and collects it.
func runModelSection(t *testing.T, args ...string) (*statusReport, string, error) {
	t.Helper()
	fs := newFlags("status", "status", "")
	kafka := addKafkaFlags(fs)
	sec := addModelSectionFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	r := &statusReport{}
	err := sec.collect(context.Background(), kafka.Brokers, r)
	var b strings.Builder
	if rep, ok := r.Model.(*modelReport); ok {
		printModelStatus(&b, rep)
	}
	return r, b.String(), err
}

func TestStatusModelSection(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "my_model")
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "models.config")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`model_config_list { config {
		name: "my_model" base_path: "%s" model_version_policy { all {} }
		version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } version_labels { key: "blue" value: 2 } } }`, base)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, stack.Config{Models: &modelserver.Config{RESTAddr: "-", ModelConfigFile: cfgFile}}).Models

	r, text, err := runModelSection(t, "--tfserving", s.GRPCAddr(), "--labels", "stable,canary,blue,gold")
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Model.(*modelReport)
	if len(rep.Versions) != 2 || rep.Versions[0].Version != 2 || rep.Versions[0].State != "AVAILABLE" ||
		strings.Join(rep.Versions[0].Labels, ",") != "blue,canary" || strings.Join(rep.Versions[1].Labels, ",") != "stable" {
		t.Fatalf("versions %+v", rep.Versions)
	}
	if _, ok := rep.Labels["gold"]; ok {
		t.Fatal("unknown label reported")
	}
	sig := rep.Signature
	if sig == nil || sig.Version != 2 || sig.Inputs[0].Alias != "features" || sig.Inputs[0].DType != "DT_FLOAT" ||
		fmt.Sprint(sig.Inputs[0].Shape) != "[-1 32]" || sig.Outputs[0].Alias != "score" {
		t.Fatalf("signature %+v", sig)
	}
	for _, want := range []string{"model my_model at " + s.GRPCAddr(), "VERSION", "2        AVAILABLE  blue,canary  OK",
		"1        AVAILABLE  stable       OK", "signature serving_default (tensorflow/serving/predict) of version 2",
		"input   features  DT_FLOAT  [-1,32]", "output  score     DT_FLOAT  [-1,1]"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	if rep.StandIn || strings.Contains(text, "STAND-IN") {
		t.Error("the real my_model reported as a stand-in")
	}

	// A stand-in says so, and shows every input and output of its signature.
	st := stacktest.Start(t, stack.Config{Models: &modelserver.Config{RESTAddr: "-",
		StandIns: []modelserver.StandIn{{Name: "ranker", File: filepath.Join("..", "..", "infer", "modelserver", "testdata", "stand-in", "ranker.json")}}}}).Models
	r, text, err = runModelSection(t, "--tfserving", st.GRPCAddr(), "--model", "ranker")
	if err != nil {
		t.Fatal(err)
	}
	if rep := r.Model.(*modelReport); !rep.StandIn || len(rep.Signature.Inputs) != 3 || len(rep.Signature.Outputs) != 2 {
		t.Fatalf("stand-in report %+v", rep)
	}
	for _, want := range []string{"a STAND-IN", "input   dense    DT_FLOAT   [-1,4]", "input   query    DT_STRING  [-1]", "input   user_id  DT_INT64   [-1]",
		"output  score    DT_FLOAT   [-1,1]", "output  top_ids  DT_INT64   [-1,3]"} {
		if !strings.Contains(text, want) {
			t.Errorf("stand-in text lacks %q:\n%s", want, text)
		}
	}

	// A real cluster without --tfserving: no model section at all.
	if r, _, err := runModelSection(t, "--brokers", "k1:9092"); err != nil || r.Model != nil {
		t.Fatalf("with --brokers only: %v %v", r.Model, err)
	}
	// Unknown model and unreachable server: errors that say what to do.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tfserving", s.GRPCAddr(), "--model", "nope"}, []string{"NOT_FOUND: Could not find any versions of model nope", "--model"}},
		{[]string{"--tfserving", dead}, []string{"connect to TF Serving at " + dead, "set --tfserving"}},
	} {
		if _, _, err := runModelSection(t, tt.args...); err == nil {
			t.Fatalf("%v: no error", tt.args)
		} else {
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: %q lacks %q", tt.args, err, w)
				}
			}
		}
	}
}

// TestStatusModelSectionFleet: --tfserving naming two hosts, one serving
// only version 1: status lists both hosts with what each serves and prints
// the version skew, naming the host (text and JSON).
func TestStatusModelSectionFleet(t *testing.T) {
	full := stacktest.Start(t, stack.Config{Models: &modelserver.Config{RESTAddr: "-"}}).Models
	base := filepath.Join(t.TempDir(), "my_model")
	if _, err := model.Materialize(model.Name, base); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(base, "2")); err != nil {
		t.Fatal(err)
	}
	old := stacktest.Start(t, stack.Config{Models: &modelserver.Config{RESTAddr: "-", ModelBasePath: base}}).Models
	r, text, err := runModelSection(t, "--tfserving", full.GRPCAddr()+","+old.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Model.(*modelReport)
	if len(rep.Hosts) != 2 || len(rep.Skew) == 0 {
		t.Fatalf("hosts %+v, skew %v", rep.Hosts, rep.Skew)
	}
	for _, h := range rep.Hosts {
		want := map[string]string{full.GRPCAddr(): "1,2", old.GRPCAddr(): "1"}[h.Address]
		if fmt.Sprint(h.Available) != "["+strings.ReplaceAll(want, ",", " ")+"]" || h.State != "up" {
			t.Errorf("host %+v, want AVAILABLE %s and up", h, want)
		}
	}
	for _, want := range []string{"TF Serving hosts", full.GRPCAddr() + "  up", "VERSION SKEW: my_model versions differ across hosts", "AVAILABLE 1 on " + old.GRPCAddr()} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}
