package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inferops/inferops/infer/tfpb"
)

// FuzzParseRecord: input records are outside bytes. Whatever arrives, the
// parser must not panic, must refuse with a known reason, and what it accepts
// must be a JSON object whose features it read exactly (checked against
// encoding/json, which accepts a superset: duplicate keys, deeper nesting).
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":"req-1","features":[0.5,1,-2.25]}`,
		`{"features":[1e-3,2E2,0],"pad":"xxxx"}`,
		`{"id":42,"features":[1],"meta":{"a":[1,{"b":null}],"c":true}}`,
		`{"features":[NaN]}`, `{"features":[1,"2"]}`, `{"id":{"a":1},"features":[1]}`,
		`{"features":[1,2`, `[1]`, ``, "\x00\x01 binary",
	} {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		width = max(width%64, 0) + 1
		var rec Values
		rerr := seedSchema(t, width).Parse(b, &rec)
		if rerr != nil {
			if !IsReason(rerr.Reason) {
				t.Fatalf("unknown reason %q", rerr.Reason)
			}
			return
		}
		var v struct {
			ID       json.RawMessage `json:"id"`
			Features []json.Number   `json:"features"`
		}
		if err := json.Unmarshal(b, &v); err != nil && !lenientString(err) {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, b)
		}
		feats := rec.Float32s(0)
		if len(v.Features) != len(feats) || len(feats) != width {
			t.Fatalf("features %v, encoding/json read %v (width %d)", feats, v.Features, width)
		}
		for i, n := range v.Features {
			// ParseFloat(s, 32) rounds once, as the parser must; float32 of
			// a float64 parse would round twice.
			x, err := strconv.ParseFloat(n.String(), 32)
			if err != nil || float32(x) != feats[i] {
				t.Fatalf("features[%d] = %v, want %v (%v)", i, feats[i], float32(x), err)
			}
		}
		if rec.ID != nil && !bytes.Equal(bytes.TrimSpace(v.ID), rec.ID) {
			t.Fatalf("id %q, encoding/json read %q", rec.ID, v.ID)
		}
	})
}

// FuzzParseRedrives: the redrive count is a header anyone may write; what it
// accepts must be exactly a small decimal number.
func FuzzParseRedrives(f *testing.F) {
	for _, s := range []string{"0", "3", "1048576", "1048577", "-1", "", "１", "9999999", "12a"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := ParseRedrives(b)
		if !ok {
			return
		}
		want, err := strconv.Atoi(string(b))
		if err != nil || want != n || n < 0 || b[0] == '+' || b[0] == '-' {
			t.Fatalf("ParseRedrives(%q) = %d, strconv says %d (%v)", b, n, want, err)
		}
	})
}

// FuzzSchemaParse: records for a typed schema are outside bytes too.
// Whatever arrives, the parser must not panic and must refuse with a known
// reason; what it accepts must be JSON whose every input encoding/json reads
// to the same values (exact integers, float32 rounded once, unescaped or
// base64-decoded strings) in the shape it recorded.
func FuzzSchemaParse(f *testing.F) {
	f.Add([]byte(record(typedFields, nil)))
	for _, over := range []map[string]string{
		{"seq": `[]`, "any": `5`, "query": `{"b64": "AAEC/w=="}`},
		{"query": `"\ud83d\ude00 \ud800 \\n"`, "user_id": `-9223372036854775808`},
		{"ad_ids": `[1, 2]`}, {"user_id": `"7"`}, {"big": `-1`}, {"context": `[NaN, 1]`},
		{"any": `[[1, 2], [3]]`}, {"grid": `[[1, 2], [3]]`}, {"query": "null"},
	} {
		f.Add([]byte(record(typedFields, over)))
	}
	f.Add([]byte(`{"query":"a","query":"b"}`))
	f.Add([]byte("\x00 binary"))
	s := typedSchema(f, SchemaOptions{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Values
		rerr := s.Parse(b, &v)
		if rerr != nil {
			if !IsReason(rerr.Reason) {
				t.Fatalf("unknown reason %q", rerr.Reason)
			}
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			if lenientString(err) {
				return
			}
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, b)
		}
		for i := range s.Len() {
			spec, field, kind := s.Input(i)
			var tree any
			dec := json.NewDecoder(bytes.NewReader(obj[field]))
			dec.UseNumber()
			if err := dec.Decode(&tree); err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			var leaves []any
			dims := flattenJSON(tree, &leaves, 0, nil)
			if got := v.Dims(i); len(leaves) > 0 && !slicesEqual(got, dims) {
				t.Fatalf("%s dims %v, encoding/json shape %v", spec.Name, got, dims)
			}
			for j, leaf := range leaves {
				switch kind {
				case KindInt64:
					n := leaf.(json.Number)
					if spec.DType == tfpb.DataType_DT_UINT64 {
						u, err := strconv.ParseUint(n.String(), 10, 64)
						if err != nil || uint64(v.Int64s(i)[j]) != u {
							t.Fatalf("%s[%d] = %d, want %s", spec.Name, j, v.Int64s(i)[j], n)
						}
						continue
					}
					x, err := strconv.ParseInt(n.String(), 10, 64)
					if err != nil || v.Int64s(i)[j] != x {
						t.Fatalf("%s[%d] = %d, want %s", spec.Name, j, v.Int64s(i)[j], n)
					}
				case KindFloat32:
					x, err := strconv.ParseFloat(leaf.(json.Number).String(), 32)
					if err != nil || float32(x) != v.Float32s(i)[j] {
						t.Fatalf("%s[%d] = %v, want %v", spec.Name, j, v.Float32s(i)[j], x)
					}
				case KindFloat64:
					x, err := strconv.ParseFloat(leaf.(json.Number).String(), 64)
					if err != nil || x != v.Float64s(i)[j] {
						t.Fatalf("%s[%d] = %v, want %v", spec.Name, j, v.Float64s(i)[j], x)
					}
				case KindBool:
					if leaf.(bool) != v.Bools(i)[j] {
						t.Fatalf("%s[%d] = %v, want %v", spec.Name, j, v.Bools(i)[j], leaf)
					}
				case KindString:
					got := v.Strings(i)[j]
					switch l := leaf.(type) {
					case string:
						// encoding/json replaces invalid UTF-8; we keep the bytes.
						if utf8.Valid(got) && string(got) != l {
							t.Fatalf("%s[%d] = %q, want %q", spec.Name, j, got, l)
						}
					case map[string]any:
						want, err := base64.StdEncoding.DecodeString(l["b64"].(string))
						if err != nil {
							want, err = base64.RawStdEncoding.DecodeString(l["b64"].(string))
						}
						if err != nil || !bytes.Equal(got, want) {
							t.Fatalf("%s[%d] = %q, want b64 %q", spec.Name, j, got, l["b64"])
						}
					default:
						t.Fatalf("%s[%d]: accepted %T", spec.Name, j, leaf)
					}
				}
			}
		}
	})
}

// lenientString is the one thing the parsers accept that JSON does not, on
// purpose: raw control characters inside a skipped string (a producer's
// padding is scanned with IndexByte for speed; ids, keys and input strings
// are checked).
func lenientString(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) && strings.Contains(se.Error(), "in string literal")
}

// flattenJSON collects the leaves of nested lists (a {"b64"} object is a
// leaf) and returns the shape of the first path down.
func flattenJSON(v any, leaves *[]any, depth int, dims []int64) []int64 {
	if l, ok := v.([]any); ok {
		if len(dims) == depth {
			dims = append(dims, int64(len(l)))
		}
		for _, e := range l {
			dims = flattenJSON(e, leaves, depth+1, dims)
		}
		return dims
	}
	*leaves = append(*leaves, v)
	return dims
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
