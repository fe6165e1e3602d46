package pipeline

// A stand-in is a model the embedded server makes up from a real model's
// signature (`inferops serve --stand-in NAME=FILE`, FILE being what TF
// Serving's GET /v1/models/NAME/metadata returned): exactly that
// signature, outputs computed deterministically from the inputs. The
// server says so in the metadata every client already reads: the
// SignatureDefMap holds one more signature, StandInSignature, whose method
// is StandInMethod and which takes and returns nothing (TF models carry
// such extra entries too, like __saved_model_init_op, and clients that
// look up serving_default never see it). The status command, the console
// header and doctor show "stand-in" when it is there.
const (
	StandInSignature = "__inferops_stand_in__"
	StandInMethod    = "inferops/stand-in"
)
