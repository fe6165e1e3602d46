package tensor

import (
	"testing"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeTensor: the server decodes client tensors, so no byte string
// may make DecodeTensor panic or return more values than the shape holds.
// go test -fuzz FuzzDecodeTensor ./infer/tensor explores further.
func FuzzDecodeTensor(f *testing.F) {
	for _, p := range []*tfpb.TensorProto{
		{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: ShapeProto(2, 2), TensorContent: make([]byte, 16)},
		{Dtype: tfpb.DataType_DT_HALF, TensorShape: ShapeProto(3), HalfVal: []int32{1, 2}},
		{Dtype: tfpb.DataType_DT_STRING, TensorShape: ShapeProto(1), StringVal: [][]byte{[]byte("x")}},
		{Dtype: tfpb.DataType_DT_COMPLEX128, TensorShape: ShapeProto(1 << 40), DcomplexVal: []float64{1}},
		{Dtype: tfpb.DataType_DT_INT16, TensorShape: ShapeProto(2), TensorContent: []byte{1, 2, 3, 4}},
	} {
		b, _ := proto.Marshal(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p tfpb.TensorProto
		if proto.Unmarshal(b, &p) != nil {
			return
		}
		tn, err := DecodeTensor(&p)
		if err != nil {
			return
		}
		n, err := elements(tn.Shape)
		if err != nil || tn.Len() != n {
			t.Fatalf("decoded %d values for shape %v (%v)", tn.Len(), tn.Shape, err)
		}
	})
}
