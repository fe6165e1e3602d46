package worker

import (
	"math/rand/v2"
	"testing"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/pipeline"
)

// BenchmarkBatchPath is the worker's own per-batch work around a Predict,
// for 64 seed records of 2 KB: parse each, gather the batch input by input,
// encode it as the request's tensor_content, and write every result from a
// [64, 1] output. The network, Kafka and TF Serving are left out, so the
// figure moves only with the worker's code. ns/op is per batch; the
// ns/record metric divides by 64.
func BenchmarkBatchPath(b *testing.B) {
	schema, err := pipeline.NewSchema([]pipeline.TensorSpec{{Name: pipeline.FieldFeatures, DType: tfpb.DataType_DT_FLOAT, Shape: []int64{-1, 32}}}, pipeline.SchemaOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := &Pool{schema: schema, outputs: []string{"score"}, outputJSON: [][]byte{pipeline.AppendJSONString(nil, "score")}, binary: []bool{false},
		modelJSON: pipeline.AppendJSONString(nil, "my_model")}
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]*item, 64)
	for i := range rows {
		rows[i] = &item{value: benchRecord(nil, i, 32, 2048, rng), topic: "ai_input", partition: 3, offset: int64(1000 + i)}
	}
	out := tensor.Tensor{DType: tfpb.DataType_DT_FLOAT, Shape: []int64{64, 1}, Float32: make([]float32, 64)}
	for i := range out.Float32 {
		out.Float32[i] = float32(i) / 97
	}
	outs := []pipeline.Output{{NameJSON: p.outputJSON[0], Rows: resultRows{t: &out}}}
	var content []byte
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range rows {
			if rerr := schema.Parse(it.value, &it.vals); rerr != nil {
				b.Fatal(rerr)
			}
		}
		bt := p.gather(rows)
		var tp tfpb.TensorProto
		content, err = tensor.Encode(&tp, bt.inputs[pipeline.FieldFeatures], content[:0])
		if err != nil {
			b.Fatal(err)
		}
		p.batches.Put(bt)
		for i, it := range rows {
			it.out = pipeline.AppendResult(it.out[:0], it.vals.ID, it.topic, it.partition, it.offset, p.modelJSON, 2, outs, i)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/record")
}
