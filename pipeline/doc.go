// Package pipeline is the contract of the inference pipeline inferops
// operates. Start reading here: everything the other packages agree on
// lives in this one place, and they import it instead of redefining it.
//
//	producers -> Kafka ai_input (12) -> inference workers -> TF Serving Predict
//	          -> Kafka ai_output (12) -> downstream apps     bad input -> ai_input.dlq (3)
//
// What it holds:
//
//   - defaults.go: the names and numbers the seed design fixes (topics,
//     group, model, ports, partitions, batching, message size), the single
//     source for flag defaults and the config file's defaults;
//   - topics.go: the topics a pipeline needs and how they are created;
//   - schema.go, parse.go, values.go, record.go: the input record contract
//     for any signature (Schema: which field feeds which input, parsed
//     into typed Values), the seed's {"id": ..., "features": [...]} as its
//     fast path, and dlq.go's reasons a record is refused;
//   - synth.go: the one synthesizer of valid and malformed records for a
//     schema (demo traffic, perf runs, tests);
//   - model.go: how the embedded server marks a stand-in model;
//   - result.go and headers.go: the result record the worker writes, and
//     the headers on results and dead letters (source offset, model
//     version, DLQ reason and detail);
//   - deadletter.go: a dead letter as every reader (console, status,
//     report) sees it;
//   - event.go: the one Event type every source (worker, Kafka, model
//     server, perf, advice) reports to an operator;
//   - evidence.go: what the advice rules read about a live pipeline.
//
// The package has no dependencies inside inferops but infer/tfpb (for
// DataType), so every layer may use it. Starting a whole embedded stack (broker, model server, topics) is one
// layer up, in pipeline/stack, because it needs the Kafka and model server
// packages that themselves import this one.
package pipeline
