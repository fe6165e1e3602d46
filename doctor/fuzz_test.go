package doctor

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// FuzzParsePromText: doctor reads Prometheus text from whatever answers on
// the REST port. Whatever it is, parsing must not panic; what it accepts
// has a name without braces or blanks, and the batching summary of it is a
// number, never a panic. Seeds: testdata/fuzz/FuzzParsePromText (the
// embedded model server's own page among them).
func FuzzParsePromText(f *testing.F) {
	f.Add([]byte(":tensorflow:serving:batching_session:processed_batch_size_sum{model=\"m\"} 128\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		samples, err := parsePromText(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, s := range samples {
			if !validMetricName(s.Name) {
				t.Fatalf("sample name %q", s.Name)
			}
		}
		st := batchingFrom(samples)
		if st.Batches > 0 && math.IsNaN(st.AvgBatch) && !math.IsNaN(st.Batches) {
			for _, s := range samples {
				if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
					return // NaN in, NaN out
				}
			}
			t.Fatalf("average batch NaN from finite samples: %+v", st)
		}
	})
}

// FuzzParseOSRelease: /etc/os-release is whatever the host has.
func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte("NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"8.9\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseOSRelease(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = r.IsRHEL8()
		for _, v := range []string{r.ID, r.IDLike, r.VersionID, r.PrettyName} {
			if strings.ContainsRune(v, '\n') {
				t.Fatalf("value with a newline: %q", v)
			}
		}
	})
}
