// Package tfpb is the generated Go code for inferops' own subset of the
// TensorFlow Serving API (proto packages tensorflow.serving, tensorflow and
// tensorflow.error). The .proto sources live in proto/ and were written from
// the field tables in docs/tfserving-api.md: the message, service and field
// names and numbers match TF Serving 2.12, so this code talks to a real
// tensorflow_model_server and real TF Serving clients talk to ours.
//
// Do not edit the *.pb.go files; run `make proto` (pinned generators).
package tfpb
