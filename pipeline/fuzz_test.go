package pipeline

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
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
		width = max(width%64, 0)
		rec, rerr := ParseRecord(b, nil, width)
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
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, b)
		}
		if len(v.Features) != len(rec.Features) || (width > 0 && len(rec.Features) != width) {
			t.Fatalf("features %v, encoding/json read %v (width %d)", rec.Features, v.Features, width)
		}
		for i, n := range v.Features {
			// ParseFloat(s, 32) rounds once, as the parser must; float32 of
			// a float64 parse would round twice.
			x, err := strconv.ParseFloat(n.String(), 32)
			if err != nil || float32(x) != rec.Features[i] {
				t.Fatalf("features[%d] = %v, want %v (%v)", i, rec.Features[i], float32(x), err)
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
