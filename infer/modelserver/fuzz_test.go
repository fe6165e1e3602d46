package modelserver

import (
	"encoding/json"
	"testing"

	"github.com/inferops/inferops/infer/model"
	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
)

// FuzzRESTBody: any request body gives a tensor or an error, never a panic,
// and a tensor always holds as many values as its shape says.
// go test -fuzz FuzzRESTBody ./infer/modelserver explores further.
func FuzzRESTBody(f *testing.F) {
	for _, s := range []string{`[[1,2],[3,4]]`, `[{"features":[1]}]`, `[[[]]]`, `[1e999]`, `["x"]`, `{"features":[[1]]}`, `[[1],[1,2]]`, `[`} {
		f.Add(s)
	}
	for _, s := range []string{`[{"user_id": 1, "ad_ids": [1,2,3,4,5,6,7,8], "context": [], "query": {"b64": "eA=="}, "hour": 3}]`,
		`{"user_id": [1], "query": ["a"], "hour": [1], "ad_ids": [[1]], "context": [[0.5]]}`} {
		f.Add(s)
	}
	sigs := []*tfpb.SignatureDef{netSignature(model.CTR(1)), netSignature(model.Ads(1))}
	f.Fuzz(func(t *testing.T, s string) {
		for _, sd := range sigs {
			for _, parse := range []func(*tfpb.SignatureDef, json.RawMessage) (map[string]*tensor.Tensor, error){parseInstances, parseColumnar} {
				in, err := parse(sd, json.RawMessage(s))
				if err != nil {
					continue
				}
				for alias, tn := range in {
					n := int64(1)
					for _, d := range tn.Shape {
						n *= d
					}
					if int64(tn.Len()) != n || tn.DType != sd.Inputs[alias].GetDtype() {
						t.Fatalf("%q: %s %s has %d values for shape %v", s, alias, tn.DType, tn.Len(), tn.Shape)
					}
				}
			}
		}
	})
}
