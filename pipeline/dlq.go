package pipeline

// Reasons a record goes to the dead-letter topic. They are the value of the
// inferops-error header and the keys of the worker's error counters, so they
// are stable, short and grep-able.
const (
	ReasonInvalidJSON     = "invalid_json"
	ReasonMissingFeatures = "missing_features"
	ReasonNonNumeric      = "non_numeric_feature"
	ReasonWrongWidth      = "wrong_width"
	ReasonNonFinite       = "non_finite"
	ReasonOversized       = "oversized"
	ReasonBadID           = "bad_id"
	ReasonRejected        = "rejected_by_model" // TF Serving said INVALID_ARGUMENT for this row

	// The reasons of every schema but the seed's (one DT_FLOAT [-1, D]
	// "features" input keeps the three above); the detail names the input.
	ReasonMissingInput = "missing_input" // no field (or null) for a signature input
	ReasonWrongType    = "wrong_type"    // a value that is not of the input's dtype
	ReasonWrongShape   = "wrong_shape"   // lists that do not fit the input's shape
	ReasonOutOfRange   = "out_of_range"  // a number beyond the dtype's range
)

// Reasons lists every dead-letter reason, in the order the console and the
// triage report show them.
var Reasons = []string{
	ReasonInvalidJSON, ReasonMissingFeatures, ReasonNonNumeric, ReasonWrongWidth,
	ReasonNonFinite, ReasonOversized, ReasonBadID, ReasonRejected,
	ReasonMissingInput, ReasonWrongType, ReasonWrongShape, ReasonOutOfRange,
}

// IsReason reports whether s is a dead-letter reason, as opposed to the
// other failure kinds the worker counts next to them (predict, produce,
// consume), which are not the producer's fault.
func IsReason(s string) bool {
	for _, r := range Reasons {
		if r == s {
			return true
		}
	}
	return false
}

// DLQMaxValue caps the copy of an oversized record in the DLQ: the original
// would be rejected by the broker for the same reason it was rejected here.
const DLQMaxValue = 64 << 10
