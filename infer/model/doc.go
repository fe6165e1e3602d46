// Package model is inferops' own model file format and the feed-forward
// click-through-rate (CTR) network the embedded model server runs, plus the
// shipped model my_model (versions 1 and 2).
//
// # Layout on disk
//
// Models use TF Serving's layout: <base_path>/<version>/ with the version a
// decimal int64. Where TF Serving finds saved_model.pb, we find one file,
// model.iom (FileName).
//
// # The .iom format (version 1)
//
// All integers and floats are little-endian.
//
//	offset  size        field
//	0       8           magic "IOPSNN01"
//	8       2           len(input alias) = a, then a bytes (UTF-8), e.g. "features"
//	.       2           len(output alias) = o, then o bytes, e.g. "score"
//	.       4           layer count L (1..64)
//	        per layer:
//	.       4           in  (> 0; the first layer's in is the input width D)
//	.       4           out (> 0; must equal the next layer's in)
//	.       1           activation: 0 linear, 1 ReLU, 2 sigmoid
//	.       4*in*out    weights W, row-major [in][out]: y[j] = act(b[j] + Σ_i x[i]·W[i][j])
//	.       4*out       biases b
//	end-4   4           CRC-32 (IEEE) of every byte before it
//
// The serving signature is derived from the file: "serving_default",
// method tensorflow/serving/predict, input <input alias> DT_FLOAT [-1, D],
// output <output alias> DT_FLOAT [-1, out of the last layer].
//
// Sizes are capped (MaxParams) so a corrupt or hostile file fails to load
// with an error instead of exhausting memory.
//
// # my_model
//
// CTR(v) builds version v of the shipped network: 32 features -> 64 ReLU ->
// 32 ReLU -> 1 sigmoid ("score", a click probability). Weights come from a
// seeded SplitMix64 generator (He-scaled, approximately normal values made
// from exact additions), so every build and every machine writes
// bit-identical files; outputs agree to float32 rounding (a compiler may fuse
// multiply-adds on some CPUs). Versions 1 and 2 use different seeds.
// Materialize writes them to a directory.
package model
