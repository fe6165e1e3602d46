package modelserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/model"
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
			out[alias] = infoJSON{DType: ti.GetDtype().String(), Shape: sh, Name: ti.GetName()}
		}
		return out
	}
	sig := signature(sv.model)
	type sigJSON struct {
		Inputs     map[string]infoJSON `json:"inputs"`
		Outputs    map[string]infoJSON `json:"outputs"`
		MethodName string              `json:"method_name"`
	}
	out := map[string]any{
		"model_spec": map[string]string{"name": sv.name, "signature_name": "", "version": strconv.FormatInt(sv.version, 10)},
		"metadata": map[string]any{"signature_def": map[string]any{"signature_def": map[string]sigJSON{
			signatureName: {Inputs: conv(sig.Inputs), Outputs: conv(sig.Outputs), MethodName: sig.MethodName},
		}}},
	}
	return json.MarshalIndent(out, "", " ")
}

// restPredict implements the row ("instances") and columnar ("inputs")
// formats for our single-input float models.
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
	if err := checkSignature(sigName); err != nil {
		return nil, err
	}
	var t tensor.Tensor
	if hasInstances {
		t, err = parseInstances(sv.model, instances)
	} else {
		t, err = parseColumnar(sv.model, inputs)
	}
	if err != nil {
		return nil, err
	}
	rows, err := checkTensor(sv.model, &t)
	if err != nil {
		return nil, err
	}
	out, err := s.compute(r.Context(), sv, "predict", t.Float32, rows)
	if err != nil {
		return nil, err
	}
	key := "predictions"
	if !hasInstances {
		key = "outputs"
	}
	return renderOutput(key, out, rows, sv.model.OutputWidth()), nil
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

// parseInstances reads the row format: a non-empty list whose elements are
// the input's value per row, or objects keyed by input alias.
func parseInstances(m *model.Model, raw json.RawMessage) (tensor.Tensor, error) {
	v, err := decodeAny(raw)
	if err != nil {
		return tensor.Tensor{}, err
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return tensor.Tensor{}, badRequest("Expecting 'instances' to be an list/array with non-zero length")
	}
	t := tensor.Tensor{DType: tfpb.DataType_DT_FLOAT, Float32: []float32{}}
	var elemShape []int64
	for i, row := range list {
		if obj, ok := row.(map[string]any); ok {
			if err := checkObjectKeys(m, obj, "instances"); err != nil {
				return t, err
			}
			row = obj[m.Input]
		}
		var shape []int64
		if t.Float32, shape, err = flatten(t.Float32, row, nil, 0); err != nil {
			return t, err
		}
		if i == 0 {
			elemShape = shape
		} else if !slices.Equal(shape, elemShape) {
			return t, badRequest("Expecting tensors in 'instances' to have the same shape: instance 0 has shape %s, instance %d has %s", shapeString(elemShape), i, shapeString(shape))
		}
	}
	t.Shape = append([]int64{int64(len(list))}, elemShape...)
	return t, nil
}

// parseColumnar reads the columnar format: the whole tensor as nested
// lists, or an object keyed by input alias.
func parseColumnar(m *model.Model, raw json.RawMessage) (tensor.Tensor, error) {
	v, err := decodeAny(raw)
	if err != nil {
		return tensor.Tensor{}, err
	}
	if obj, ok := v.(map[string]any); ok {
		if err := checkObjectKeys(m, obj, "inputs"); err != nil {
			return tensor.Tensor{}, err
		}
		v = obj[m.Input]
	}
	t := tensor.Tensor{DType: tfpb.DataType_DT_FLOAT}
	t.Float32, t.Shape, err = flatten(nil, v, nil, 0)
	return t, err
}

func checkObjectKeys(m *model.Model, obj map[string]any, where string) error {
	if _, ok := obj[m.Input]; !ok {
		return badRequest("Missing named input: %s in '%s' object.", m.Input, where)
	}
	if len(obj) != 1 {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			if k != m.Input {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		return badRequest("input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", keys[0], m.Input)
	}
	return nil
}

// maxDepth bounds nesting so a hostile body cannot recurse deeply.
const maxDepth = 32

// flatten appends the numbers of a nested list to dst and returns its
// shape; ragged lists and non-numbers are errors with TF's wording.
func flatten(dst []float32, v any, shape []int64, depth int) ([]float32, []int64, error) {
	if depth > maxDepth {
		return dst, nil, badRequest("JSON value nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return dst, nil, badRequest("JSON Value: %s is not of expected type: float", x)
		}
		return append(dst, float32(f)), []int64{}, nil
	case []any:
		if len(x) == 0 {
			return dst, []int64{0}, nil
		}
		var inner []int64
		for i, e := range x {
			var sh []int64
			var err error
			if dst, sh, err = flatten(dst, e, nil, depth+1); err != nil {
				return dst, nil, err
			}
			if i == 0 {
				inner = sh
			} else if !slices.Equal(sh, inner) {
				return dst, nil, badRequest("Expecting all values in a list to have the same shape: %s vs %s", shapeString(inner), shapeString(sh))
			}
		}
		return dst, append([]int64{int64(len(x))}, inner...), nil
	case string:
		return dst, nil, badRequest("JSON Value: \"%s\" Type: String is not of expected type: float", truncateString(x, 64))
	case bool:
		return dst, nil, badRequest("JSON Value: %t Type: Bool is not of expected type: float", x)
	case nil:
		return dst, nil, badRequest("JSON Value: null Type: Null is not of expected type: float")
	case map[string]any:
		return dst, nil, badRequest("JSON Value: {...} Type: Object is not of expected type: float")
	}
	return dst, nil, badRequest("JSON Value of type %T is not of expected type: float", v)
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// renderOutput writes {"predictions": [[v,...],...]} (or "outputs"); a
// [N, 1] output is a list of one-element lists, like TF.
func renderOutput(key string, out []float32, rows, width int) []byte {
	b := make([]byte, 0, 32+rows*(width*12+4))
	b = append(b, "{\n    \""...)
	b = append(b, key...)
	b = append(b, "\": ["...)
	for r := range rows {
		if r > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '[')
		for j := range width {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = appendFloat(b, out[r*width+j])
		}
		b = append(b, ']')
	}
	return append(b, "]\n}\n"...)
}

// appendFloat writes the shortest float32 form; NaN and infinities as the
// tokens TF (RapidJSON) writes.
func appendFloat(b []byte, v float32) []byte {
	switch f := float64(v); {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}
