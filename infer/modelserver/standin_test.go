package modelserver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

func standInFile(name string) string { return filepath.Join("testdata", "stand-in", name) }

// adsBatch is two rows of ads_ctr's five inputs.
func adsBatch() map[string]*tensor.Tensor {
	return map[string]*tensor.Tensor{
		"user_id": {DType: tfpb.DataType_DT_INT64, Shape: []int64{2}, Int64: []int64{1 << 40, 7}},
		"ad_ids":  {DType: tfpb.DataType_DT_INT64, Shape: []int64{2, 8}, Int64: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		"context": {DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, 16}, Float32: features(1)},
		"query":   {DType: tfpb.DataType_DT_STRING, Shape: []int64{2}, Strings: [][]byte{[]byte("running shoes"), []byte("café")}},
		"hour":    {DType: tfpb.DataType_DT_INT32, Shape: []int64{2}, Int64: []int64{9, 23}},
	}
}

func TestShippedAdsModel(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	ctx := context.Background()
	md, err := c.Metadata(ctx, model.AdsName, tfserving.Target{Label: "stable"})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := md.ServingDefault()
	if err != nil || md.Version != 1 || md.StandIn() {
		t.Fatalf("ads_ctr: %v v%d stand-in %v", err, md.Version, md.StandIn())
	}
	var names []string
	for _, in := range sd.InputSpecs() {
		names = append(names, in.String())
	}
	if got := strings.Join(names, "; "); got != "ad_ids DT_INT64 [-1,8]; context DT_FLOAT [-1,16]; hour DT_INT32 [-1]; query DT_STRING [-1]; user_id DT_INT64 [-1]" {
		t.Fatalf("inputs %s", got)
	}
	res, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.AdsName, Inputs: adsBatch()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 2 {
		t.Fatalf("outputs %v", res.Outputs)
	}
	for _, o := range []string{"ctr", "cvr"} {
		rows, err := res.Rows(o)
		if err != nil || len(rows) != 2 || len(rows[0]) != 1 || rows[0][0] <= 0 || rows[0][0] >= 1 || rows[0][0] == rows[1][0] {
			t.Fatalf("%s: %v %v", o, rows, err)
		}
	}
	// output_filter computes only what is asked for.
	res, err = c.Predict(ctx, tfserving.PredictRequest{Model: model.AdsName, Inputs: adsBatch(), OutputFilter: []string{"cvr"}})
	if cvr := res.Outputs["cvr"]; err != nil || len(res.Outputs) != 1 || cvr.Len() != 2 {
		t.Fatalf("filtered: %v %v", res, err)
	}
	// A wrong dtype names the input the way TF's kernels do.
	bad := adsBatch()
	bad["user_id"] = &tensor.Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2}, Float32: []float32{1, 2}}
	if _, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.AdsName, Inputs: bad}); err == nil || !strings.Contains(err.Error(), "to be int64 but float is provided") {
		t.Fatalf("float user_id: %v", err)
	}
	bad = adsBatch()
	bad["ad_ids"] = &tensor.Tensor{DType: tfpb.DataType_DT_INT64, Shape: []int64{2, 3}, Int64: make([]int64, 6)}
	if _, err := c.Predict(ctx, tfserving.PredictRequest{Model: model.AdsName, Inputs: bad}); err == nil || !strings.Contains(err.Error(), "input ad_ids has shape [2,3]; the signature wants [-1,8]") {
		t.Fatalf("short ad_ids: %v", err)
	}

	// REST: rows as objects keyed by input alias, predictions keyed by output.
	base := "http://" + s.RESTAddr()
	row := `{"user_id": 1099511627776, "ad_ids": [1,2,3,4,5,6,7,8], "context": ` + jsonFloats(features(1)[:16]) + `, "query": "running shoes", "hour": 9}`
	code, body, _ := httpDo(t, "POST", base+"/v1/models/ads_ctr:predict", `{"instances": [`+row+`, `+row+`]}`, nil)
	var rows struct {
		Predictions []map[string][]float32 `json:"predictions"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows.Predictions) != 2 {
		t.Fatalf("%d %s", code, body)
	}
	if p := rows.Predictions[0]; len(p["ctr"]) != 1 || len(p["cvr"]) != 1 || !near(p["ctr"][0], res0(t, c, "ctr")) {
		t.Fatalf("REST and gRPC disagree: %s", body)
	}
	code, body, _ = httpDo(t, "POST", base+"/v1/models/ads_ctr:predict", `{"inputs": {"user_id": [1], "ad_ids": [[1,2,3,4,5,6,7,8]], "context": [`+jsonFloats(features(1)[:16])+`], "query": [{"b64": "cnVubmluZw=="}], "hour": [9]}}`, nil)
	var cols struct {
		Outputs map[string][][]float32 `json:"outputs"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &cols) != nil || len(cols.Outputs["ctr"]) != 1 {
		t.Fatalf("columnar: %d %s", code, body)
	}
	code, body, _ = httpDo(t, "POST", base+"/v1/models/ads_ctr:predict", `{"instances": [{"user_id": "x", "ad_ids": [1,2,3,4,5,6,7,8], "context": [], "query": "q", "hour": 1}]}`, nil)
	if code != 400 || !strings.Contains(body, "is not of expected type: int64") {
		t.Fatalf("string user_id: %d %s", code, body)
	}
}

// res0 is gRPC's ctr for the REST test's row.
func res0(t *testing.T, c *tfserving.Client, out string) float32 {
	t.Helper()
	in := adsBatch()
	in["user_id"].Int64[0] = 1 << 40
	in["query"].Strings[0] = []byte("running shoes")
	in["hour"].Int64[0] = 9
	res, err := c.Predict(context.Background(), tfserving.PredictRequest{Model: model.AdsName, Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := res.Rows(out)
	return rows[0][0]
}

func TestStandInHalfPlusTwo(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, Config{DataDir: dir, StandIns: []StandIn{{Name: "half_plus_two", File: standInFile("half_plus_two.json")}}})
	c := dial(t, s)
	ctx := context.Background()
	md, err := c.Metadata(ctx, "half_plus_two", tfserving.Target{})
	if err != nil {
		t.Fatal(err)
	}
	if !md.StandIn() || md.Version != 123 {
		t.Fatalf("stand-in %v version %d", md.StandIn(), md.Version)
	}
	if _, ok := md.Signatures["__saved_model_init_op"]; ok {
		t.Fatal("__saved_model_init_op must be ignored")
	}
	if _, ok := md.Signatures["classify_x_to_y"]; !ok {
		t.Fatal("the file's other signatures are served too")
	}
	sd, err := md.ServingDefault()
	if err != nil {
		t.Fatal(err)
	}
	if in := sd.Inputs["x"]; in.DType != tfpb.DataType_DT_FLOAT || !slices.Equal(in.Shape, []int64{-1}) || in.Name != "x:0" {
		t.Fatalf("x: %+v", in)
	}
	x := &tensor.Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{3}, Float32: []float32{1, 2, 1}}
	res, err := c.Predict(ctx, tfserving.PredictRequest{Model: "half_plus_two", Inputs: map[string]*tensor.Tensor{"x": x}})
	if err != nil {
		t.Fatal(err)
	}
	y := res.Outputs["y"]
	if y.DType != tfpb.DataType_DT_FLOAT || !slices.Equal(y.Shape, []int64{3}) || res.Version != 123 {
		t.Fatalf("y %+v v%d", y, res.Version)
	}
	if y.Float32[0] != y.Float32[2] || y.Float32[0] == y.Float32[1] {
		t.Fatalf("outputs must be a function of the inputs: %v", y.Float32)
	}
	// A restart serves the same outputs for the same inputs.
	_ = s.Close()
	s2 := startServer(t, Config{DataDir: dir, StandIns: []StandIn{{Name: "half_plus_two", File: standInFile("half_plus_two.json")}}})
	res2, err := dial(t, s2).Predict(ctx, tfserving.PredictRequest{Model: "half_plus_two", Inputs: map[string]*tensor.Tensor{"x": x}})
	if err != nil || !slices.Equal(res2.Outputs["y"].Float32, y.Float32) {
		t.Fatalf("after a restart: %v %v", res2, err)
	}
	// REST row format: a scalar input takes bare values, a single output
	// answers with bare values.
	code, body, _ := httpDo(t, "POST", "http://"+s2.RESTAddr()+"/v1/models/half_plus_two:predict", `{"instances": [1.0, 2.0, 1.0]}`, nil)
	var p struct{ Predictions []float32 }
	if code != 200 || json.Unmarshal([]byte(body), &p) != nil || !slices.Equal(p.Predictions, y.Float32) {
		t.Fatalf("REST %d %s, want %v", code, body, y.Float32)
	}
	// The metadata says stand-in to anyone who curls it.
	code, body, _ = httpDo(t, "GET", "http://"+s2.RESTAddr()+"/v1/models/half_plus_two/metadata", "", nil)
	if code != 200 || !strings.Contains(body, pipeline.StandInSignature) || !strings.Contains(body, `"version": "123"`) {
		t.Fatalf("metadata %d %s", code, body)
	}
	// The shipped models are still served next to it.
	if _, err := dial(t, s2).Metadata(ctx, model.Name, tfserving.Target{}); err != nil {
		t.Fatal(err)
	}
}

func TestStandInTypedInputsAndOutputs(t *testing.T) {
	s := startServer(t, Config{StandIns: []StandIn{
		{Name: "ranker", File: standInFile("ranker.json")},
		{Name: "tfx", File: standInFile("tfx_examples.json")},
		{Name: model.Name, File: standInFile("half_plus_two.json")}, // replaces the shipped one
	}})
	c := dial(t, s)
	ctx := context.Background()
	in := map[string]*tensor.Tensor{
		"user_id": {DType: tfpb.DataType_DT_INT64, Shape: []int64{2}, Int64: []int64{-9223372036854775808, 9223372036854775807}},
		"dense":   {DType: tfpb.DataType_DT_FLOAT, Shape: []int64{2, 4}, Float32: []float32{1, 2, 3, 4, 5, 6, 7, 8}},
		"query":   {DType: tfpb.DataType_DT_STRING, Shape: []int64{2}, Strings: [][]byte{[]byte("a"), []byte("b")}},
	}
	res, err := c.Predict(ctx, tfserving.PredictRequest{Model: "ranker", Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	score, ids := res.Outputs["score"], res.Outputs["top_ids"]
	if !slices.Equal(score.Shape, []int64{2, 1}) || len(score.Float32) != 2 || !slices.Equal(ids.Shape, []int64{2, 3}) || len(ids.Int64) != 6 {
		t.Fatalf("score %+v top_ids %+v", score, ids)
	}
	if _, err := c.Predict(ctx, tfserving.PredictRequest{Model: "ranker", Inputs: map[string]*tensor.Tensor{"user_id": in["user_id"]}}); err == nil || !strings.Contains(err.Error(), "Missing but required: {dense,query}") {
		t.Fatalf("missing inputs: %v", err)
	}
	ex := &tensor.Tensor{DType: tfpb.DataType_DT_STRING, Shape: []int64{1}, Strings: [][]byte{{0x0a, 0x03, 0xff, 0x00}}}
	res, err = c.Predict(ctx, tfserving.PredictRequest{Model: "tfx", Inputs: map[string]*tensor.Tensor{"examples": ex}})
	if err != nil {
		t.Fatal(err)
	}
	if cl := res.Outputs["classes"]; cl.DType != tfpb.DataType_DT_STRING || len(cl.Strings) != 2 || !strings.HasPrefix(string(cl.Strings[0]), "stand-in-") {
		t.Fatalf("classes %+v", cl)
	}
	md, err := c.Metadata(ctx, model.Name, tfserving.Target{})
	if err != nil || !md.StandIn() {
		t.Fatalf("my_model replaced by a stand-in: %v %v", md, err)
	}
	if _, err := c.Metadata(ctx, model.AdsName, tfserving.Target{}); err != nil {
		t.Fatalf("ads_ctr still shipped: %v", err)
	}
}

func TestStandInFileErrors(t *testing.T) {
	good, err := os.ReadFile(standInFile("ranker.json"))
	if err != nil {
		t.Fatal(err)
	}
	const sd = "metadata.signature_def.signature_def.serving_default."
	tests := []struct {
		name, from, to, want string
	}{
		{"not JSON", `{`, `[`, "not JSON"},
		{"bad dtype", `"DT_INT64",`, `"DT_FLAOT",`, sd + `inputs.user_id.dtype: "DT_FLAOT" is not a TF dtype`},
		{"bad size", `"size": "4"`, `"size": "four"`, sd + `inputs.dense.tensor_shape.dim[1].size: "four" is not a size`},
		{"negative size", `"size": "4"`, `"size": "-2"`, `dim[1].size: "-2" is not a size`},
		{"no serving_default", `"serving_default"`, `"predict"`, `metadata.signature_def.signature_def: no serving_default signature (it has predict)`},
		{"not the metadata", `"metadata"`, `"meta"`, `metadata: missing`},
		{"inputs not an object", `"inputs": {`, `"inputs": [], "x": {`, sd + `inputs: a list is not an object`},
		{"bad version", `"version": "7"`, `"version": "seven"`, `model_spec.version: "seven" is not a version number`},
		{"sparse", `"name": "serving_default_query:0"`, `"coo_sparse": {}`, sd + `inputs.query.coo_sparse: a sparse or composite tensor`},
		{"variant", `"DT_STRING"`, `"DT_VARIANT"`, sd + `inputs.query.dtype: DT_VARIANT has no values`},
		{"huge output", `"size": "3"`, `"size": "100000000000"`, sd + `outputs.top_ids.tensor_shape: more than 1048576 values a row`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := strings.Replace(string(good), tt.from, tt.to, 1)
			if b == string(good) {
				t.Fatalf("%q is not in the file", tt.from)
			}
			_, err := parseStandIn([]byte(b))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ...%s...", err, tt.want)
			}
		})
	}
	// Start names the flag and the file.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(good), `"DT_INT64",`, `"DT_FLAOT",`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Config{GRPCAddr: "127.0.0.1:0", RESTAddr: "127.0.0.1:0", DataDir: t.TempDir(), StandIns: []StandIn{{Name: "ranker", File: bad}}})
	if err == nil || !strings.Contains(err.Error(), "--stand-in ranker="+bad+": "+sd+`inputs.user_id.dtype: "DT_FLAOT" is not a TF dtype`) {
		t.Fatalf("Start: %v", err)
	}
	for _, v := range []string{"ranker", "=f", "n="} {
		if _, err := ParseStandInFlag(v); err == nil {
			t.Errorf("ParseStandInFlag(%q) accepted", v)
		}
	}
	cfg := Config{StandIns: []StandIn{{Name: "../x", File: "f"}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "a model name is") {
		t.Errorf("path in a name: %v", err)
	}
}

// FuzzStandInFile: metadata files come from anywhere; no bytes may make
// the parser panic, and what it accepts must serve serving_default.
func FuzzStandInFile(f *testing.F) {
	for _, n := range []string{"half_plus_two.json", "ranker.json", "tfx_examples.json"} {
		b, err := os.ReadFile(standInFile(n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"metadata":{"signature_def":{"signature_def":{"serving_default":{"inputs":{"x":{"dtype":"DT_FLOAT"}},"outputs":{"y":{"dtype":"DT_BOOL","tensor_shape":{"dim":[{"size":-1}]}}}}}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStandIn(b)
		if err != nil {
			return
		}
		ld := st.loaded()
		sd, err := ld.signature("")
		if err != nil || len(sd.Inputs) == 0 || len(sd.Outputs) == 0 {
			t.Fatalf("accepted a file without a usable serving_default: %v", err)
		}
		// One row of zero values for every input, then run it.
		in := map[string]*tensor.Tensor{}
		for alias, ti := range sd.Inputs {
			in[alias] = &tensor.Tensor{DType: ti.GetDtype(), Shape: []int64{1}, Strings: [][]byte{nil}}
		}
		out, err := st.run(sd, ld.names[sd].inputs, in, 1, ld.names[sd].outputs, 1<<22)
		if err != nil {
			return
		}
		for alias, o := range out {
			n := 1
			for _, d := range o.Shape {
				n *= int(d)
			}
			if o.Len() != n || o.DType != sd.Outputs[alias].GetDtype() {
				t.Fatalf("%s: %d values for %v of %s", alias, o.Len(), o.Shape, o.DType)
			}
		}
	})
}
