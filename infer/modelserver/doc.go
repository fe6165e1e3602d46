// Package modelserver is the embedded TF-Serving-compatible model server:
// TF Serving's gRPC API (PredictionService Predict and GetModelMetadata,
// ModelService GetModelStatus and HandleReloadConfigRequest) and REST API
// (/v1/models/...), its Prometheus metric names, version lifecycle, version
// policies and labels, file-system polling, config reload and server-side
// batching, over models in inferops' own format (infer/model): the shipped
// my_model and ads_ctr by default. A TF Serving client cannot tell it from
// tensorflow_model_server for the subset in docs/tfserving-api.md; the
// seed's consumer_inference.py works unchanged.
//
// Stand-ins (Config.StandIns, `serve --stand-in NAME=FILE`) are models made
// up from a real model's metadata JSON (GET /v1/models/NAME/metadata): a
// version directory holding StandInFile instead of model.iom serves exactly
// the file's signatures (without __saved_model_init_op) and answers every
// Predict with outputs of the declared dtypes and shapes (unknown sizes are
// 1) that are a deterministic function of the inputs: each row's input
// values hash to a seed, each output value comes from the seed, the alias
// and its index (floats in [0, 1), integers in [0, 100), booleans, strings
// "stand-in-<hex>"). The metadata carries pipeline.StandInSignature so every
// client can tell. Stand-ins bypass server-side batching: there is nothing
// to batch.
//
// Where it differs from TF Serving 2.12, on purpose:
//
//   - Input dtypes and the sizes a signature fixes are checked strictly
//     (the seed's [N, D] float input with the messages TF's MatMul kernel
//     gives); TF itself leaves shapes to the model.
//   - Classify, Regress and MultiInference are UNIMPLEMENTED (gRPC) / 501
//     (REST): the shipped models are plain predict signatures.
//   - One request is bounded (Config.MaxMessageBytes, 64 MiB by default;
//     TF allows 2 GiB) so a hostile client cannot exhaust a small VM. REST
//     bodies are capped at 16 MiB (or that bound, if lower) and get 413.
//   - Labels in the startup config are checked after the first load (TF
//     checks them against what is loaded at that moment).
//   - Relative base paths in --model-config-file are resolved against the
//     file's directory (TF requires absolute ones); reloads over gRPC still
//     require absolute paths, as TF.
//   - Prometheus metrics are always on the REST port at
//     /monitoring/prometheus/metrics (TF needs --monitoring_config_file).
//   - The REST JSON parser does not accept NaN/Infinity tokens in requests
//     (it writes them in responses, as TF does).
//
// Lifecycle: every version goes START -> LOADING -> AVAILABLE, or END with
// its load error; unloading goes UNLOADING -> END. Ended versions stay in
// GetModelStatus. New versions load before old ones unload, and the last
// available version is kept while a replacement is pending.
package modelserver
