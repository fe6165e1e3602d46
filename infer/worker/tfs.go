package worker

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferops/inferops/infer/tfserving"
)

// notTheRows are INVALID_ARGUMENT messages about the request as a whole
// (target, signature), not about any row: splitting the batch would send
// every record to the DLQ for an operator's typo, so they are retried like an
// outage and shown as events until the target is fixed.
var notTheRows = []string{
	"version label",       // Unrecognized servable version label: X
	"ModelSpec",           // Missing ModelSpec
	"input tensor alias",  // our input name is wrong for this version
	"input size does not", // the signature wants more inputs
	"output tensor alias", // output filter
	"no input alias",      // client-side checks
	"no model name",       //
	"rows x",              //
	"values, ",            //
}

// predictOnce is one Predict of rows x p.width features.
func (p *Pool) predictOnce(ctx context.Context, t tfserving.Target, rows int, data []float32) (predictResult, error) {
	var res *tfserving.PredictResult
	var err error
	if p.predictHook != nil {
		err = p.predictHook(rows, data, p.width)
	}
	if err == nil {
		res, err = p.tfs.Predict(ctx, tfserving.PredictRequest{
			Model: p.cfg.Model, Target: t, Input: p.inputName, Rows: rows, Width: p.width, Data: data,
			OutputFilter: p.outputFilter,
		})
	}
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			msg := status.Convert(err).Message()
			for _, s := range notTheRows {
				if strings.Contains(msg, s) {
					return predictResult{}, err
				}
			}
			return predictResult{}, &rejectedError{msg: msg}
		}
		return predictResult{}, err
	}
	out, ok := res.Outputs[p.outputName]
	if !ok {
		return predictResult{}, fmt.Errorf("model %s v%d returned no output %q", p.cfg.Model, res.Version, p.outputName)
	}
	vals, err := out.AsFloat32()
	if err != nil {
		return predictResult{}, fmt.Errorf("model %s v%d output %q: %v", p.cfg.Model, res.Version, p.outputName, err)
	}
	if len(vals) == 0 || len(vals)%rows != 0 {
		return predictResult{}, fmt.Errorf("model %s v%d output %q has %d values for %d rows", p.cfg.Model, res.Version, p.outputName, len(vals), rows)
	}
	return predictResult{version: res.Version, values: vals, width: len(vals) / rows}, nil
}
