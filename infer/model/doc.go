// Package model is inferops' own model file format and the feed-forward
// click-through-rate (CTR) networks the embedded model server runs, plus the
// shipped models my_model and ads_ctr (versions 1 and 2 of each).
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
// Its serving signature: "serving_default", method
// tensorflow/serving/predict, input <input alias> DT_FLOAT [-1, D], output
// <output alias> DT_FLOAT [-1, out of the last layer].
//
// # The .iom format (version 2)
//
// Named, typed inputs and several outputs. Models version 1 can describe
// are written as version 1 (so my_model's files never change); files of
// either version are read.
//
//	offset  size        field
//	0       8           magic "IOPSNN02"
//	8       2           input count I (1..256), then per input:
//	.       2+n         name (u16 length, UTF-8 bytes)
//	.       1           dtype: TF's DataType number (DT_FLOAT 1, DT_INT64 9, DT_STRING 7, ...)
//	.       1           rank r (1..8), then r x 8 dims (int64; dims[0] is -1, the batch)
//	.       1           encoding: 0 dense, 1 hashed
//	        hashed only:
//	.       4, 4        buckets B, embedding width E
//	.       4*B*E       the table, row-major [B][E]
//	.       2           output count O (1..256), then per output:
//	.       2+n, 4, 4   name, offset, width: columns [offset, offset+width) of the last layer
//	.       ...         layer count and layers exactly as in version 1
//	end-4   4           CRC-32 (IEEE) of every byte before it
//
// A row of the network's input is every input's features concatenated in
// file order. A dense input (numbers or booleans, every inner size known)
// gives its values as float32: DT_FLOAT [-1, k] gives k features. A hashed
// input (integers or strings; inner sizes may be -1) looks each value up in
// its table by 64-bit FNV-1a (integers as their 8 little-endian bytes,
// strings as their bytes) modulo B and gives the mean of those rows, E
// features (zeros when a row has no values). Each output is DT_FLOAT
// [-1, width]. The signature lists the inputs with their dtypes and shapes
// and the outputs.
//
// Sizes are capped (MaxParams, counting weights and tables) so a corrupt or
// hostile file fails to load with an error instead of exhausting memory.
//
// # my_model
//
// CTR(v) builds version v of the shipped network: 32 features -> 64 ReLU ->
// 32 ReLU -> 1 sigmoid ("score", a click probability). Weights come from a
// seeded SplitMix64 generator (He-scaled, approximately normal values made
// from exact additions), so every build and every machine writes
// bit-identical files; outputs agree to float32 rounding (a compiler may fuse
// multiply-adds on some CPUs). Versions 1 and 2 use different seeds.
//
// # ads_ctr
//
// Ads(v) builds version v of the second shipped model, shaped like the CTR
// models ad platforms serve: user_id DT_INT64 [-1], ad_ids DT_INT64 [-1, 8],
// context DT_FLOAT [-1, 16], query DT_STRING [-1], hour DT_INT32 [-1] ->
// 68 features -> 64 ReLU -> 32 ReLU -> ctr and cvr, each DT_FLOAT [-1, 1].
// Materialize writes a shipped model's versions to a directory.
package model
