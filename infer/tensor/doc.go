// Package tensor is the TensorProto codec shared by both ends of the gRPC
// API: the TF Serving client (infer/tfserving) decodes Predict outputs with
// it, and the embedded model server (infer/modelserver) decodes the inputs
// clients send and encodes its answers with it. It lives apart from either so
// the server does not depend on the client, and so there is one reading of
// TF's tensor rules (tensor_content or typed *_val fields, the single-value
// fill of version 0, half and bfloat16 bit patterns) for both.
//
// DecodeTensor runs on untrusted input in the server: an inconsistent or
// oversized tensor is an error, never a panic or a huge allocation
// (DecodeTensorMax bounds the element count by the message size limit).
package tensor
