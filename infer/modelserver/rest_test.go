package modelserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/model"
)

func httpDo(t *testing.T, method, url, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRESTPredict(t *testing.T) {
	s := startServer(t, Config{})
	base := "http://" + s.RESTAddr()
	row := jsonFloats(features(1))
	x2 := features(2)
	row2 := jsonFloats(x2[32:])
	want := expected(t, 2, x2, 2)
	want1 := expected(t, 2, features(1), 1)[0]

	tests := []struct {
		name, path, body, key string
		want                  []float32
	}{
		{"seed consumer_inference.py row format", "/v1/models/my_model:predict", `{"instances": [` + row + `]}`, "predictions", []float32{want1}},
		{"two rows", "/v1/models/my_model:predict", `{"instances": [` + row + `, ` + row2 + `]}`, "predictions", want},
		{"row objects keyed by alias", "/v1/models/my_model:predict", `{"instances": [{"features": ` + row + `}]}`, "predictions", []float32{want1}},
		{"columnar list", "/v1/models/my_model:predict", `{"inputs": [` + row + `]}`, "outputs", []float32{want1}},
		{"columnar object", "/v1/models/my_model:predict", `{"signature_name": "serving_default", "inputs": {"features": [` + row + `]}}`, "outputs", []float32{want1}},
		{"pinned version", "/v1/models/my_model/versions/2:predict", `{"instances": [` + row + `]}`, "predictions", []float32{want1}},
		{"case-insensitive path", "/V1/Models/my_model:PREDICT", `{"instances": [` + row + `]}`, "predictions", []float32{want1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, hdr := httpDo(t, "POST", base+tt.path, tt.body, nil)
			if code != 200 || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s: %s", code, hdr.Get("Content-Type"), body)
			}
			var res map[string][][]float32
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			got := res[tt.key]
			if len(got) != len(tt.want) {
				t.Fatalf("%s", body)
			}
			for i := range got {
				if len(got[i]) != 1 || !near(got[i][0], tt.want[i]) {
					t.Fatalf("row %d: %v want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestRESTStatusAndMetadata(t *testing.T) {
	s := startServer(t, Config{ModelBasePath: shippedBasePath(t)})
	base := "http://" + s.RESTAddr()
	for _, path := range []string{"/v1/models/my_model", "/v1/models/my_model/versions/2", "/v1/models/my_model/labels/anything"} {
		code, body, _ := httpDo(t, "GET", base+path, "", nil)
		var st struct {
			MVS []struct {
				Version, State string
				Status         struct{ ErrorCode, ErrorMessage *string } `json:"status"`
			} `json:"model_version_status"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.MVS) != 1 || st.MVS[0].Version != "2" || st.MVS[0].State != "AVAILABLE" {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		// int64 as a string; status always present with both fields.
		if !strings.Contains(body, `"version": "2"`) || !strings.Contains(body, `"error_code": "OK"`) || !strings.Contains(body, `"error_message": ""`) {
			t.Fatalf("%s: TF's JSON shape: %s", path, body)
		}
	}
	code, body, _ := httpDo(t, "GET", base+"/v1/models/my_model/metadata", "", nil)
	var md struct {
		ModelSpec struct{ Name, Version string } `json:"model_spec"`
		Metadata  struct {
			SignatureDef struct {
				SignatureDef map[string]struct {
					Inputs map[string]struct {
						DType string `json:"dtype"`
						Shape struct {
							Dim []struct{ Size string } `json:"dim"`
						} `json:"tensor_shape"`
						Name string
					}
					MethodName string `json:"method_name"`
				} `json:"signature_def"`
			} `json:"signature_def"`
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &md) != nil {
		t.Fatalf("metadata %d %s", code, body)
	}
	in := md.Metadata.SignatureDef.SignatureDef["serving_default"].Inputs["features"]
	if md.ModelSpec.Name != model.Name || md.ModelSpec.Version != "2" || in.DType != "DT_FLOAT" || len(in.Shape.Dim) != 2 ||
		in.Shape.Dim[0].Size != "-1" || in.Shape.Dim[1].Size != "32" || in.Name != "features:0" {
		t.Fatalf("metadata %s", body)
	}
}

func TestRESTErrors(t *testing.T) {
	s := startServer(t, Config{MaxMessageBytes: 64 << 10})
	base := "http://" + s.RESTAddr()
	row := jsonFloats(features(1))
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"unknown model", "POST", "/v1/models/nope:predict", `{"instances": [` + row + `]}`, 404, "Servable not found for request: Latest(nope)"},
		{"unknown version", "POST", "/v1/models/my_model/versions/9:predict", `{"instances": [` + row + `]}`, 404, "Specific(my_model, 9)"},
		{"unknown label", "POST", "/v1/models/my_model/labels/gold:predict", `{"instances": [` + row + `]}`, 400, "Unrecognized servable version label: gold"},
		{"status unknown model", "GET", "/v1/models/nope", "", 404, "Could not find any versions of model nope"},
		{"status unknown version", "GET", "/v1/models/my_model/versions/9", "", 404, "Could not find version 9 of model my_model"},
		{"no model name", "GET", "/v1/models", "", 400, "Missing model name in request."},
		{"verb mismatch", "GET", "/v1/models/my_model:predict", "", 400, "Malformed request: GET /v1/models/my_model:predict"},
		{"unknown signature", "POST", "/v1/models/my_model:predict", `{"signature_name": "x", "instances": [` + row + `]}`, 400, `Serving signature key "x" not found.`},
		{"both keys", "POST", "/v1/models/my_model:predict", `{"instances": [` + row + `], "inputs": [` + row + `]}`, 400, "Not both"},
		{"neither key", "POST", "/v1/models/my_model:predict", `{"rows": []}`, 400, "Missing 'inputs' or 'instances' key"},
		{"malformed JSON", "POST", "/v1/models/my_model:predict", `{"instances": [[1, 2`, 400, "JSON Parse error"},
		{"top level array", "POST", "/v1/models/my_model:predict", `[1, 2]`, 400, "JSON Parse error"},
		{"empty body", "POST", "/v1/models/my_model:predict", ``, 400, "JSON Parse error"},
		{"empty instances", "POST", "/v1/models/my_model:predict", `{"instances": []}`, 400, "non-zero length"},
		{"wrong width", "POST", "/v1/models/my_model:predict", `{"instances": [[1, 2, 3]]}`, 400, "Matrix size-incompatible: In[0]: [1,3]"},
		{"scalar instances", "POST", "/v1/models/my_model:predict", `{"instances": [1, 2]}`, 400, "In[0] is not a matrix"},
		{"ragged instances", "POST", "/v1/models/my_model:predict", `{"instances": [[1, 2], [1]]}`, 400, "same shape"},
		{"non-numeric feature", "POST", "/v1/models/my_model:predict", `{"instances": [["high", 0.5]]}`, 400, `"high" Type: String is not of expected type: float`},
		{"null feature", "POST", "/v1/models/my_model:predict", `{"instances": [[null]]}`, 400, "Null is not of expected type"},
		{"wrong alias in object", "POST", "/v1/models/my_model:predict", `{"instances": [{"x": ` + row + `}]}`, 400, "Missing named input: features in 'instances' object."},
		{"extra alias", "POST", "/v1/models/my_model:predict", `{"inputs": {"features": [` + row + `], "y": 1}}`, 400, "input tensor alias not found in signature: y"},
		{"deep nesting", "POST", "/v1/models/my_model:predict", `{"instances": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, 400, "nested deeper"},
		{"oversized body", "POST", "/v1/models/my_model:predict", `{"instances": [` + strings.Repeat(row+",", 400) + row + `]}`, 413, "larger than"},
		{"classify", "POST", "/v1/models/my_model:classify", `{"examples": []}`, 501, "use :predict"},
		{"options without origin", "OPTIONS", "/v1/models/my_model", "", 400, "Malformed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, hdr := httpDo(t, tt.method, base+tt.path, tt.body, nil)
			var e struct{ Error string }
			if code != tt.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tt.msg) {
				t.Fatalf("got %d %s; want %d with %q", code, body, tt.code, tt.msg)
			}
			if hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", hdr.Get("Content-Type"))
			}
		})
	}
	if code, _, _ := httpDo(t, "GET", base+"/healthz", "", nil); code != 404 {
		t.Fatalf("non-API path: %d", code)
	}
	if code, _, _ := httpDo(t, "OPTIONS", base+"/v1/models/my_model", "", map[string]string{"Origin": "https://ui.example"}); code != 200 {
		t.Fatalf("CORS preflight: %d", code)
	}
	// The server survived all of it, and REST counted each request.
	code, _, _ := httpDo(t, "POST", base+"/v1/models/my_model:predict", `{"instances": [`+row+`]}`, nil)
	m := scrape(t, s)
	if code != 200 || m[`:tensorflow:serving:request_count{model_name="my_model",status="INVALID_ARGUMENT"}`] < 10 ||
		m[`:tensorflow:serving:request_latency_count{API="predict",entrypoint="REST",model_name="my_model"}`] != 1 {
		t.Fatalf("after errors: %d, metrics %v", code, m)
	}
}
