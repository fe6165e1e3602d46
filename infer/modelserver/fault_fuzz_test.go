package modelserver

import (
	"math"
	"strings"
	"testing"
)

// FuzzParseFault: --fault is outside text. Any spec gives a Fault or an
// error naming the flag, never a panic; an accepted Fault is valid and its
// String reads back as the same fault.
// go test -fuzz FuzzParseFault ./infer/modelserver explores further.
func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"my_model/2:latency=50ms", "my_model/2:errors=5%", "my_model/2:latency=50ms,errors=5%", "ads_ctr/*:errors=100%",
		"my_model", "my_model/x:latency=5", "my_model/2:errors=150%", "my_model/2:jitter=1ms", "m/+1:errors=1e-3%", "m/2:latency=1m,errors=0%", "m/2:errors=1%,code=internal", "m/2:errors=1%,code=unavailable"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ft, err := ParseFault(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--fault ") {
				t.Fatalf("%q: error does not name the flag: %v", spec, err)
			}
			return
		}
		if err := ft.validate(); err != nil {
			t.Fatalf("%q: accepted %+v, which is invalid: %v", spec, ft, err)
		}
		again, err := ParseFault(ft.String())
		if err != nil {
			t.Fatalf("%q: String %q does not read back: %v", spec, ft.String(), err)
		}
		if again.Model != ft.Model || again.Version != ft.Version || again.Latency != ft.Latency || again.failCode() != ft.failCode() || math.Abs(again.Errors-ft.Errors) > 1e-9*ft.Errors {
			t.Fatalf("%q: %+v reads back from %q as %+v", spec, ft, ft.String(), again)
		}
	})
}
