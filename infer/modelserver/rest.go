package modelserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TF Serving's REST routes (http_rest_api_handler.cc), matched on the
// escaped path, case-insensitively; captures are URL-decoded afterwards.
var (
	getRe  = regexp.MustCompile(`(?i)^/v1/models(?:/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(/metadata)?)?/?$`)
	postRe = regexp.MustCompile(`(?i)^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)$`)
)

// maxRESTBody caps a JSON body below the gRPC bound: decoded JSON numbers
// take several times their text size, so 16 MiB of JSON stays a few hundred
// MiB at worst instead of gigabytes.
const maxRESTBody = 16 << 20

// httpStatus is TF's TF-code -> HTTP mapping (http_server.cc).
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return 200
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return 400
	case codes.DeadlineExceeded:
		return 504
	case codes.NotFound:
		return 404
	case codes.AlreadyExists, codes.Aborted:
		return 409
	case codes.PermissionDenied:
		return 403
	case codes.ResourceExhausted:
		return 429
	case codes.Unimplemented:
		return 501
	case codes.Unavailable:
		return 503
	case codes.Unauthenticated:
		return 401
	}
	return 500
}

func (s *Server) restHandler() http.Handler {
	prom := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		switch {
		case strings.EqualFold(p, pipeline.TFServingMetricsPath):
			prom.ServeHTTP(w, r)
		case len(p) >= 4 && strings.EqualFold(p[:4], "/v1/"):
			s.serveAPI(w, r, p)
		default:
			http.NotFound(w, r)
		}
	})
}

// restResult is what one API call produced.
type restResult struct {
	model string
	api   string // "predict", "classify", "regress"; "" for GET
	body  []byte
	err   error
	code  int // HTTP status overriding the error's mapping
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	start := time.Now()
	res := s.route(r, path)
	w.Header().Set("Content-Type", "application/json")
	code := http.StatusOK
	if res.err != nil {
		st := status.Convert(res.err)
		code = httpStatus(st.Code())
		if res.code != 0 {
			code = res.code
		}
		res.body = errorBody(st.Message())
		s.metrics.request(res.model, res.api, "REST", st.Code(), time.Since(start))
	} else {
		s.metrics.request(res.model, res.api, "REST", codes.OK, time.Since(start))
	}
	w.WriteHeader(code)
	_, _ = w.Write(res.body)
}

// errorBody is TF's pretty-printed {"error": "..."}.
func errorBody(msg string) []byte {
	b, _ := json.MarshalIndent(map[string]string{"error": msg}, "", "    ")
	return append(b, '\n')
}

func badRequest(format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, format, a...)
}

// spec builds the ModelSpec of a REST path's captures.
func restSpec(m []string) (*tfpb.ModelSpec, error) {
	name, err := url.PathUnescape(m[1])
	if err != nil {
		return nil, badRequest("Malformed model name %q: %v", m[1], err)
	}
	spec := &tfpb.ModelSpec{Name: name}
	switch {
	case m[2] != "":
		v, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			return nil, badRequest("Failed to convert version: %s to numeric.", m[2])
		}
		spec.VersionChoice = &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(v)}
	case m[3] != "":
		l, err := url.PathUnescape(m[3])
		if err != nil {
			return nil, badRequest("Malformed label %q: %v", m[3], err)
		}
		spec.VersionChoice = &tfpb.ModelSpec_VersionLabel{VersionLabel: l}
	}
	return spec, nil
}

func (s *Server) route(r *http.Request, path string) restResult {
	malformed := restResult{err: badRequest("Malformed request: %s %s", r.Method, path)}
	switch r.Method {
	case http.MethodOptions:
		if o := r.Header.Get("Origin"); strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://") {
			return restResult{body: []byte{}}
		}
		return malformed
	case http.MethodGet:
		m := getRe.FindStringSubmatch(path)
		if m == nil {
			return malformed
		}
		if m[1] == "" {
			return restResult{err: badRequest("Missing model name in request.")}
		}
		spec, err := restSpec(m)
		if err != nil {
			return restResult{err: err}
		}
		res := restResult{model: spec.Name}
		if m[4] != "" {
			res.body, res.err = s.restMetadata(spec)
		} else {
			res.body, res.err = s.restStatus(spec)
		}
		return res
	case http.MethodPost:
		m := postRe.FindStringSubmatch(path)
		if m == nil {
			return malformed
		}
		spec, err := restSpec(m)
		if err != nil {
			return restResult{err: err}
		}
		verb := strings.ToLower(m[4])
		res := restResult{model: spec.Name, api: verb}
		if verb != "predict" {
			res.err = status.Errorf(codes.Unimplemented, "%s is not served by the inferops model server: use :predict", verb)
			return res
		}
		limit := min(s.cfg.MaxMessageBytes, maxRESTBody)
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, int64(limit)))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				res.err = status.Errorf(codes.InvalidArgument, "request body is larger than %d bytes: send fewer instances per request (or use gRPC)", limit)
				res.code = http.StatusRequestEntityTooLarge
				return res
			}
			res.err = badRequest("read request body: %v", err)
			return res
		}
		res.body, res.err = s.restPredict(r, spec, body)
		return res
	}
	return malformed
}

// restStatus answers GET /v1/models/{m}[/versions/{v}] in protobuf JSON
// with primitives printed: int64 as strings, enums by name.
func (s *Server) restStatus(spec *tfpb.ModelSpec) ([]byte, error) {
	resp, err := s.modelStatus(spec)
	if err != nil {
		return nil, err
	}
	type statusJSON struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	}
	type versionJSON struct {
		Version string     `json:"version"`
		State   string     `json:"state"`
		Status  statusJSON `json:"status"`
	}
	out := struct {
		MVS []versionJSON `json:"model_version_status"`
	}{MVS: []versionJSON{}}
	for _, v := range resp.ModelVersionStatus {
		out.MVS = append(out.MVS, versionJSON{
			Version: strconv.FormatInt(v.Version, 10),
			State:   v.State.String(),
			Status:  statusJSON{v.Status.GetErrorCode().String(), v.Status.GetErrorMessage()},
		})
	}
	return json.MarshalIndent(out, "", " ")
}

// restMetadata answers .../metadata with signature_def nested twice, as TF.
func (s *Server) restMetadata(spec *tfpb.ModelSpec) ([]byte, error) {
	sv, err := s.models.lookup(spec)
	if err != nil {
		return nil, err
	}
	type dimJSON struct {
		Size string `json:"size"`
		Name string `json:"name"`
	}
	type shapeJSON struct {
		Dim         []dimJSON `json:"dim"`
		UnknownRank bool      `json:"unknown_rank"`
	}
	type infoJSON struct {
		DType string    `json:"dtype"`
		Shape shapeJSON `json:"tensor_shape"`
		Name  string    `json:"name"`
	}
	conv := func(m map[string]*tfpb.TensorInfo) map[string]infoJSON {
		out := map[string]infoJSON{}
		for alias, ti := range m {
			sh := shapeJSON{Dim: []dimJSON{}}
			for _, d := range ti.GetTensorShape().GetDim() {
				sh.Dim = append(sh.Dim, dimJSON{Size: strconv.FormatInt(d.GetSize(), 10), Name: d.GetName()})
			}
			sh.UnknownRank = ti.GetTensorShape().GetUnknownRank()
			out[alias] = infoJSON{DType: ti.GetDtype().String(), Shape: sh, Name: ti.GetName()}
		}
		return out
	}
	type sigJSON struct {
		Inputs     map[string]infoJSON `json:"inputs"`
		Outputs    map[string]infoJSON `json:"outputs"`
		MethodName string              `json:"method_name"`
	}
	defs := map[string]sigJSON{}
	for name, sd := range sv.ld.sigs {
		defs[name] = sigJSON{Inputs: conv(sd.GetInputs()), Outputs: conv(sd.GetOutputs()), MethodName: sd.GetMethodName()}
	}
	out := map[string]any{
		"model_spec": map[string]string{"name": sv.name, "signature_name": "", "version": strconv.FormatInt(sv.version, 10)},
		"metadata":   map[string]any{"signature_def": map[string]any{"signature_def": defs}},
	}
	return json.MarshalIndent(out, "", " ")
}

// restPredict implements the row ("instances") and columnar ("inputs")
// formats for any signature: the dtype of every value comes from the
// signature, as in TF.
func (s *Server) restPredict(r *http.Request, spec *tfpb.ModelSpec, body []byte) ([]byte, error) {
	var req map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) || len(bytes.TrimSpace(body)) == 0 {
			return nil, badRequest("JSON Parse error: The document root must be an object: %v", err)
		}
		return nil, badRequest("JSON Parse error: %v", err)
	}
	if req == nil {
		return nil, badRequest("JSON Parse error: The document root must be an object.")
	}
	var sigName string
	if raw, ok := req["signature_name"]; ok {
		if err := json.Unmarshal(raw, &sigName); err != nil {
			return nil, badRequest("'signature_name' key must be a string value.")
		}
	}
	spec.SignatureName = sigName
	instances, hasInstances := req["instances"]
	inputs, hasInputs := req["inputs"]
	switch {
	case hasInstances && hasInputs:
		return nil, badRequest("Not both 'inputs' and 'instances' keys can be specified in the request.")
	case !hasInstances && !hasInputs:
		return nil, badRequest("Missing 'inputs' or 'instances' key")
	}
	sv, err := s.models.lookup(spec)
	if err != nil {
		return nil, err
	}
	sd, err := sv.ld.signature(sigName)
	if err != nil {
		return nil, err
	}
	var in map[string]*tensor.Tensor
	if hasInstances {
		in, err = parseInstances(sd, instances)
	} else {
		in, err = parseColumnar(sd, inputs)
	}
	if err != nil {
		return nil, err
	}
	rows, err := sv.ld.checkTensors(sd, in)
	if err != nil {
		return nil, err
	}
	out, err := s.predict(r.Context(), sv, "predict", sd, in, rows, nil)
	if err != nil {
		return nil, err
	}
	if hasInstances {
		return renderRows(out, rows), nil
	}
	return renderColumns(out), nil
}

func decodeAny(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("JSON Parse error: %v", err)
	}
	return v, nil
}

// newInputs makes an empty tensor per signature input, of its dtype.
func newInputs(sd *tfpb.SignatureDef) map[string]*tensor.Tensor {
	in := make(map[string]*tensor.Tensor, len(sd.Inputs))
	for alias, ti := range sd.Inputs {
		in[alias] = &tensor.Tensor{DType: ti.GetDtype()}
	}
	return in
}

// isB64 reports TF's binary string form, {"b64": "..."}, which is a value,
// not an object keyed by input alias.
func isB64(v any) bool {
	o, ok := v.(map[string]any)
	if !ok || len(o) != 1 {
		return false
	}
	_, ok = o["b64"].(string)
	return ok
}

// parseInstances reads the row format: a non-empty list whose elements are
// the only input's value per row, or objects keyed by input alias.
func parseInstances(sd *tfpb.SignatureDef, raw json.RawMessage) (map[string]*tensor.Tensor, error) {
	v, err := decodeAny(raw)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, badRequest("Expecting 'instances' to be an list/array with non-zero length")
	}
	in := newInputs(sd)
	aliases := keys(sd.Inputs)
	shapes := map[string][]int64{}
	for i, row := range list {
		obj, keyed := row.(map[string]any)
		if keyed && len(aliases) == 1 && isB64(row) {
			keyed = false
		}
		if !keyed && len(aliases) != 1 {
			return nil, badRequest("Expecting object but got list at item %d of input list", i)
		}
		if keyed {
			if err := checkObjectKeys(aliases, obj, "instances"); err != nil {
				return nil, err
			}
		}
		for _, alias := range aliases {
			val := row
			if keyed {
				val = obj[alias]
			}
			t := in[alias]
			shape, err := appendValue(t, val, 0)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				shapes[alias] = shape
			} else if !slices.Equal(shape, shapes[alias]) {
				return nil, badRequest("Expecting tensors in 'instances' to have the same shape: instance 0 has shape %s, instance %d has %s", shapeString(shapes[alias]), i, shapeString(shape))
			}
		}
	}
	for alias, t := range in {
		t.Shape = append([]int64{int64(len(list))}, shapes[alias]...)
	}
	return in, nil
}

// parseColumnar reads the columnar format: the whole tensor as nested
// lists (one input), or an object keyed by input alias.
func parseColumnar(sd *tfpb.SignatureDef, raw json.RawMessage) (map[string]*tensor.Tensor, error) {
	v, err := decodeAny(raw)
	if err != nil {
		return nil, err
	}
	aliases := keys(sd.Inputs)
	in := newInputs(sd)
	obj, keyed := v.(map[string]any)
	if keyed && len(aliases) == 1 && isB64(v) {
		keyed = false
	}
	if !keyed {
		if len(aliases) != 1 {
			return nil, badRequest("'inputs' must be an object keyed by input alias for a signature of %d inputs", len(aliases))
		}
		obj = map[string]any{aliases[0]: v}
	} else if err := checkObjectKeys(aliases, obj, "inputs"); err != nil {
		return nil, err
	}
	for _, alias := range aliases {
		t := in[alias]
		if t.Shape, err = appendValue(t, obj[alias], 0); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func checkObjectKeys(aliases []string, obj map[string]any, where string) error {
	for _, a := range aliases {
		if _, ok := obj[a]; !ok {
			return badRequest("Missing named input: %s in '%s' object.", a, where)
		}
	}
	if len(obj) != len(aliases) {
		for _, k := range keys(obj) {
			if !slices.Contains(aliases, k) {
				return badRequest("input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", k, strings.Join(aliases, ","))
			}
		}
	}
	return nil
}

// maxDepth bounds nesting so a hostile body cannot recurse deeply.
const maxDepth = 32

// appendValue appends the values of a nested list of t's dtype to t and
// returns its shape; ragged lists and values of another type are errors
// with TF's wording.
func appendValue(t *tensor.Tensor, v any, depth int) ([]int64, error) {
	if depth > maxDepth {
		return nil, badRequest("JSON value nested deeper than %d levels", maxDepth)
	}
	if x, ok := v.([]any); ok {
		if len(x) == 0 {
			return []int64{0}, nil
		}
		var inner []int64
		for i, e := range x {
			sh, err := appendValue(t, e, depth+1)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				inner = sh
			} else if !slices.Equal(sh, inner) {
				return nil, badRequest("Expecting all values in a list to have the same shape: %s vs %s", shapeString(inner), shapeString(sh))
			}
		}
		return append([]int64{int64(len(x))}, inner...), nil
	}
	return []int64{}, appendScalar(t, v)
}

// appendScalar appends one JSON value as t's dtype.
func appendScalar(t *tensor.Tensor, v any) error {
	want := dtypeName(t.DType)
	mismatch := func() error {
		switch x := v.(type) {
		case string:
			return badRequest("JSON Value: \"%s\" Type: String is not of expected type: %s", truncateString(x, 64), want)
		case bool:
			return badRequest("JSON Value: %t Type: Bool is not of expected type: %s", x, want)
		case nil:
			return badRequest("JSON Value: null Type: Null is not of expected type: %s", want)
		case json.Number:
			return badRequest("JSON Value: %s Type: Number is not of expected type: %s", x, want)
		case map[string]any:
			return badRequest("JSON Value: {...} Type: Object is not of expected type: %s", want)
		}
		return badRequest("JSON Value of type %T is not of expected type: %s", v, want)
	}
	switch t.DType {
	case tfpb.DataType_DT_STRING:
		switch x := v.(type) {
		case string:
			t.Strings = append(t.Strings, []byte(x))
			return nil
		case map[string]any:
			if isB64(x) {
				b, err := base64.StdEncoding.DecodeString(x["b64"].(string))
				if err != nil {
					return badRequest("Unable to base64 decode: %s", truncateString(x["b64"].(string), 64))
				}
				t.Strings = append(t.Strings, b)
				return nil
			}
		}
		return mismatch()
	case tfpb.DataType_DT_BOOL:
		if b, ok := v.(bool); ok {
			t.Bool = append(t.Bool, b)
			return nil
		}
		return mismatch()
	}
	n, ok := v.(json.Number)
	if !ok {
		return mismatch()
	}
	switch t.DType {
	case tfpb.DataType_DT_FLOAT, tfpb.DataType_DT_HALF, tfpb.DataType_DT_BFLOAT16:
		f, err := strconv.ParseFloat(string(n), 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return mismatch()
		}
		t.Float32 = append(t.Float32, float32(f))
	case tfpb.DataType_DT_DOUBLE:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return mismatch()
		}
		t.Float64 = append(t.Float64, f)
	case tfpb.DataType_DT_UINT64:
		u, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			return mismatch()
		}
		t.Uint64 = append(t.Uint64, u)
	case tfpb.DataType_DT_INT8, tfpb.DataType_DT_INT16, tfpb.DataType_DT_INT32, tfpb.DataType_DT_INT64,
		tfpb.DataType_DT_UINT8, tfpb.DataType_DT_UINT16, tfpb.DataType_DT_UINT32:
		x, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || !fitsInt(t.DType, x) {
			return mismatch()
		}
		t.Int64 = append(t.Int64, x)
	default:
		return badRequest("inputs of %s cannot be written in JSON", t.DType)
	}
	return nil
}

// fitsInt is the range of an integer dtype.
func fitsInt(d tfpb.DataType, x int64) bool {
	switch d {
	case tfpb.DataType_DT_INT8:
		return x >= math.MinInt8 && x <= math.MaxInt8
	case tfpb.DataType_DT_INT16:
		return x >= math.MinInt16 && x <= math.MaxInt16
	case tfpb.DataType_DT_INT32:
		return x >= math.MinInt32 && x <= math.MaxInt32
	case tfpb.DataType_DT_UINT8:
		return x >= 0 && x <= math.MaxUint8
	case tfpb.DataType_DT_UINT16:
		return x >= 0 && x <= math.MaxUint16
	case tfpb.DataType_DT_UINT32:
		return x >= 0 && x <= math.MaxUint32
	}
	return true
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// restJSON is how REST responses write tensors: NaN and infinities as
// RapidJSON's tokens, "_bytes" outputs as base64, like TF.
func restJSON(alias string) tensor.JSONOptions {
	return tensor.JSONOptions{NonFiniteTokens: true, Binary: tensor.BinaryOutput(alias)}
}

// renderRows writes {"predictions": [...]}: per row the only output's value,
// or an object keyed by output alias.
func renderRows(out map[string]*tensor.Tensor, rows int) []byte {
	aliases := keys(out)
	b := make([]byte, 0, 64+rows*16*len(aliases))
	b = append(b, "{\n    \"predictions\": ["...)
	for r := range rows {
		if r > 0 {
			b = append(b, ", "...)
		}
		if len(aliases) == 1 {
			b = tensor.AppendRowJSON(b, out[aliases[0]], r, restJSON(aliases[0]))
			continue
		}
		b = append(b, '{')
		for i, a := range aliases {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = pipeline.AppendJSONString(b, a)
			b = append(b, ": "...)
			b = tensor.AppendRowJSON(b, out[a], r, restJSON(a))
		}
		b = append(b, '}')
	}
	return append(b, "]\n}\n"...)
}

// renderColumns writes {"outputs": ...}: the only output's whole tensor, or
// an object keyed by output alias.
func renderColumns(out map[string]*tensor.Tensor) []byte {
	aliases := keys(out)
	b := append([]byte(nil), "{\n    \"outputs\": "...)
	if len(aliases) == 1 {
		b = tensor.AppendJSON(b, out[aliases[0]], restJSON(aliases[0]))
	} else {
		b = append(b, '{')
		for i, a := range aliases {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = pipeline.AppendJSONString(b, a)
			b = append(b, ": "...)
			b = tensor.AppendJSON(b, out[a], restJSON(a))
		}
		b = append(b, '}')
	}
	return append(b, "\n}\n"...)
}
