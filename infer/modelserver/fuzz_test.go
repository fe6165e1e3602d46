package modelserver

import (
	"encoding/json"
	"testing"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
)

// FuzzRESTBody: any request body gives a tensor or an error, never a panic,
// and a tensor always holds as many values as its shape says.
// go test -fuzz FuzzRESTBody ./infer/modelserver explores further.
func FuzzRESTBody(f *testing.F) {
	for _, s := range []string{`[[1,2],[3,4]]`, `[{"features":[1]}]`, `[[[]]]`, `[1e999]`, `["x"]`, `{"features":[[1]]}`, `[[1],[1,2]]`, `[`} {
		f.Add(s)
	}
	m := model.CTR(1)
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(*model.Model, json.RawMessage) (tensor.Tensor, error){parseInstances, parseColumnar} {
			tn, err := parse(m, json.RawMessage(s))
			if err != nil {
				continue
			}
			n := int64(1)
			for _, d := range tn.Shape {
				n *= d
			}
			if int64(len(tn.Float32)) != n {
				t.Fatalf("%q: %d values for shape %v", s, len(tn.Float32), tn.Shape)
			}
		}
	})
}
