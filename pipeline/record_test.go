package pipeline

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tfpb"
)

func TestParseRecord(t *testing.T) {
	deep := `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"features":[1]}`
	tests := []struct {
		name   string
		in     string
		width  int
		id     string // raw token; "" = absent
		feats  []float32
		reason string
	}{
		{name: "seed record", in: `{"id": "req-1", "features": [0.5, 1, -2.25]}`, width: 3, id: `"req-1"`, feats: []float32{0.5, 1, -2.25}},
		{name: "no id", in: `{"features":[1e-3,2E2,0]}`, feats: []float32{0.001, 200, 0}},
		{name: "numeric id", in: `{"id":42,"features":[1]}`, id: `42`, feats: []float32{1}},
		{name: "null id", in: `{"id":null,"features":[1]}`, feats: []float32{1}},
		{name: "escaped id kept raw", in: `{"id":"a\"b\u00e9","features":[1]}`, id: `"a\"b\u00e9"`, feats: []float32{1}},
		{name: "unknown keys skipped", in: `{"ts":1700000000,"pad":"xxxx","meta":{"a":[1,{"b":null}],"c":true},"features":[3],"id":"z"}`, id: `"z"`, feats: []float32{3}},
		{name: "whitespace", in: " \n{ \"features\" :\t[ 1 , 2 ] }\r\n", feats: []float32{1, 2}},
		{name: "long mantissa", in: `{"features":[0.123456789012345678,123456789.5]}`, feats: []float32{0.12345679, 123456790}},
		{name: "empty", in: ``, reason: ReasonInvalidJSON},
		{name: "not an object", in: `[1,2]`, reason: ReasonInvalidJSON},
		{name: "truncated", in: `{"features":[1,2`, reason: ReasonInvalidJSON},
		{name: "trailing garbage", in: `{"features":[1]} x`, reason: ReasonInvalidJSON},
		{name: "bad number", in: `{"features":[01]}`, reason: ReasonInvalidJSON},
		{name: "bad escape", in: `{"id":"\x","features":[1]}`, reason: ReasonInvalidJSON},
		{name: "control char in string", in: "{\"id\":\"a\nb\",\"features\":[1]}", reason: ReasonInvalidJSON},
		{name: "too deep", in: deep, reason: ReasonInvalidJSON},
		{name: "duplicate features", in: `{"features":[1],"features":[2]}`, reason: ReasonInvalidJSON},
		{name: "missing features", in: `{"id":"a"}`, reason: ReasonMissingFeatures},
		{name: "empty features", in: `{"features":[]}`, reason: ReasonMissingFeatures},
		{name: "string feature", in: `{"features":[1,"2"]}`, reason: ReasonNonNumeric},
		{name: "null feature", in: `{"features":[null]}`, reason: ReasonNonNumeric},
		{name: "features object", in: `{"features":{"a":1}}`, reason: ReasonNonNumeric},
		{name: "features string", in: `{"features":"1,2"}`, reason: ReasonNonNumeric},
		{name: "nested array", in: `{"features":[[1,2]]}`, reason: ReasonNonNumeric},
		{name: "NaN", in: `{"features":[1,NaN]}`, reason: ReasonNonFinite},
		{name: "Infinity", in: `{"features":[Infinity]}`, reason: ReasonNonFinite},
		{name: "-Infinity", in: `{"features":[-Infinity]}`, reason: ReasonNonFinite},
		{name: "float32 overflow", in: `{"features":[1e39]}`, reason: ReasonNonFinite},
		{name: "wrong width", in: `{"features":[1,2]}`, width: 3, reason: ReasonWrongWidth},
		{name: "object id", in: `{"id":{"a":1},"features":[1]}`, reason: ReasonBadID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			width := tt.width
			if width == 0 {
				width = max(len(tt.feats), 1)
			}
			var rec Values
			rerr := seedSchema(t, width).Parse([]byte(tt.in), &rec)
			if tt.reason != "" {
				if rerr == nil {
					t.Fatalf("want %s, parsed %+v", tt.reason, rec)
				}
				if rerr.Reason != tt.reason {
					t.Fatalf("reason = %s (%v), want %s", rerr.Reason, rerr, tt.reason)
				}
				return
			}
			if rerr != nil {
				t.Fatalf("unexpected error: %v", rerr)
			}
			if string(rec.ID) != tt.id {
				t.Errorf("id = %q, want %q", rec.ID, tt.id)
			}
			feats := rec.Float32s(0)
			if len(feats) != len(tt.feats) {
				t.Fatalf("features = %v, want %v", feats, tt.feats)
			}
			for i := range tt.feats {
				if feats[i] != tt.feats[i] {
					t.Errorf("features[%d] = %v, want %v", i, feats[i], tt.feats[i])
				}
			}
		})
	}
}

// The fast float path must agree bit for bit with strconv.
func TestParseFloat32MatchesStrconv(t *testing.T) {
	inputs := []string{"0", "-0", "1", "0.1", "0.3", "16777215", "16777216", "16777217", "0.0000001",
		"0.1234567", "-9999999.9", "3.4028234e38", "1.17549435e-38", "1.4e-45", "7.038531e-26",
		"0.0000000001", "0.00000000001", "123.456", "8388609.5"}
	// Plus a deterministic sweep of typical 7-8 digit decimals.
	x := uint64(12345)
	for i := 0; i < 20000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		digits := int(x>>60) % 9
		v := float64(x>>11) / float64(1<<53) * math.Pow10(int(x>>56)%6)
		inputs = append(inputs, strconv.FormatFloat(v, 'f', digits, 64))
	}
	for _, s := range inputs {
		want, err := strconv.ParseFloat(s, 32)
		if err != nil {
			t.Fatal(err)
		}
		got, gerr := parseFloat32([]byte(s))
		if gerr != nil {
			t.Fatalf("%s: %v", s, gerr)
		}
		if math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("%s: got %v want %v", s, got, float32(want))
		}
	}
}

// floatRows is a [N, w] float32 output, written as tensor.AppendRowJSON
// writes it for results (NaN as null).
type floatRows struct {
	w    int
	vals []float32
}

func (f floatRows) AppendRowJSON(dst []byte, row int) []byte {
	dst = append(dst, '[')
	for i, v := range f.vals[row*f.w : (row+1)*f.w] {
		if i > 0 {
			dst = append(dst, ',')
		}
		if math.IsNaN(float64(v)) {
			dst = append(dst, "null"...)
			continue
		}
		dst = strconv.AppendFloat(dst, float64(v), 'g', -1, 32)
	}
	return append(dst, ']')
}

func TestAppendResultIsJSON(t *testing.T) {
	model := AppendJSONString(nil, "my_model")
	one := []Output{{NameJSON: AppendJSONString(nil, "score"), Rows: floatRows{3, []float32{9, 9, 9, 0.25, float32(math.NaN()), 1e-7}}}}
	tests := []struct {
		name  string
		id    []byte
		topic string
		want  string
	}{
		{name: "string id", id: []byte(`"req-7"`), topic: "ai_input", want: "req-7"},
		{name: "no id", id: nil, topic: "ai_input", want: "ai_input-3-99"},
		{name: "odd topic", id: nil, topic: `we"ird`, want: `we"ird-3-99`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendResult(nil, tt.id, tt.topic, 3, 99, model, 2, one, 1)
			var v struct {
				ID           string     `json:"id"`
				Model        string     `json:"model"`
				ModelVersion int64      `json:"model_version"`
				Predictions  []*float64 `json:"predictions"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if v.ID != tt.want || v.Model != "my_model" || v.ModelVersion != 2 || len(v.Predictions) != 3 {
				t.Fatalf("decoded %+v from %s", v, b)
			}
			if *v.Predictions[0] != 0.25 || v.Predictions[1] != nil || float32(*v.Predictions[2]) != 1e-7 {
				t.Fatalf("predictions %s", b)
			}
		})
	}
	// The seed's result, byte for byte as before signatures were general.
	seed := []Output{{NameJSON: AppendJSONString(nil, "score"), Rows: floatRows{1, []float32{0.7310586}}}}
	if got, want := string(AppendResult(nil, []byte(`"demo-1"`), "ai_input", 0, 5, model, 1, seed, 0)),
		`{"id":"demo-1","model":"my_model","model_version":1,"predictions":[0.7310586]}`; got != want {
		t.Errorf("seed result\n got %s\nwant %s", got, want)
	}
	two := []Output{
		{NameJSON: AppendJSONString(nil, "ctr"), Rows: floatRows{1, []float32{0.5, 0.25}}},
		{NameJSON: AppendJSONString(nil, "cvr"), Rows: floatRows{1, []float32{0.125, 0.0625}}},
	}
	if got, want := string(AppendResult(nil, []byte(`7`), "ai_input", 0, 5, AppendJSONString(nil, "ads_ctr"), 3, two, 1)),
		`{"id":7,"model":"ads_ctr","model_version":3,"predictions":{"ctr":[0.25],"cvr":[0.0625]}}`; got != want {
		t.Errorf("two outputs\n got %s\nwant %s", got, want)
	}
}

// BenchmarkParseRecord2KB is the seed's record on its fast path, through
// Schema.Parse as the worker calls it: it must not allocate.
func BenchmarkParseRecord2KB(b *testing.B) {
	rec := sampleRecord(1, 128)
	s := seedSchema(b, 128)
	b.SetBytes(int64(len(rec)))
	var v Values
	b.ReportAllocs()
	for b.Loop() {
		if rerr := s.Parse(rec, &v); rerr != nil {
			b.Fatal(rerr)
		}
	}
}

// seedSchema is the seed model's: one DT_FLOAT [-1, width] input "features".
func seedSchema(tb testing.TB, width int) *Schema {
	tb.Helper()
	s, err := NewSchema([]TensorSpec{{Name: FieldFeatures, DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, int64(width)}}}, SchemaOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	if !s.Seed() {
		tb.Fatal("the seed's signature must take the seed's fast path")
	}
	return s
}

// sampleRecord is a ~2 KB seed-style record with width features.
func sampleRecord(n, width int) []byte {
	b := []byte(`{"id":"req-`)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `","features":[`...)
	x := uint32(n*7919 + 1)
	for i := 0; i < width; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		x = x*1664525 + 1013904223
		b = strconv.AppendFloat(b, float64(x>>8)/float64(1<<24)*2-1, 'f', 7, 32)
	}
	b = append(b, "]}"...)
	return b
}

// The seed's dead-letter details are a contract (operators grep them, the
// triage report groups by them): exactly what they were before schemas.
func TestSeedDetailsUnchanged(t *testing.T) {
	s := seedSchema(t, 32)
	for in, want := range map[string]string{
		`{"id":"missing"}`:                   `missing_features: no "features" key`,
		`{"id":"empty","features":[]}`:       `missing_features: "features" is empty`,
		`{"id":"width","features":[1,2]}`:    `wrong_width: 2 features, the model wants 32`,
		`{"id":"string","features":["x"]}`:   `non_numeric_feature: features[0] = "x" is not a number`,
		`{"id":"object","features":{"a":1}}`: `non_numeric_feature: "features" is an object; want an array of numbers`,
		`{"id":"nan","features":[1,NaN]}`:    `non_finite: features[1] is NaN`,
		`{"id":"big","features":[1e39]}`:     `non_finite: features[0] = 1e39 overflows float32`,
		`{"id":"json","features":[1,2`:       `invalid_json: want ',' or ']' in "features" at byte 28`,
		`{"id":"a\x01","features":[1]}`:      `invalid_json: bad string in "id" at byte 9`,
		`{"id":-,"features":[1]}`:            `invalid_json: bad number in "id" at byte 6`,
		`[]`:                                 `invalid_json: want a JSON object like {"id": "...", "features": [...]} at byte 0`,
		`{"features":[1]}x`:                  `invalid_json: trailing data after the object at byte 16`,
		`{"id":[1],"features":[1]}`:          `bad_id: "id" must be a string or a number`,
	} {
		var v Values
		if rerr := s.Parse([]byte(in), &v); rerr == nil || rerr.Error() != want {
			t.Errorf("%s: %v, want %s", in, rerr, want)
		}
	}
}
