package pipeline

// Field names of the input and result records. An input record is a flat
// JSON object: a field per signature input (the seed's model reads
// FieldFeatures), an optional FieldID copied into its result, and anything
// else (timestamps, padding), which the worker skips.
const (
	FieldID           = "id"
	FieldFeatures     = "features"
	FieldPad          = "pad" // filler the demo and perf generators add to reach a size
	FieldModel        = "model"
	FieldModelVersion = "model_version"
	FieldPredictions  = "predictions"
)

// The writers below build input records for the generators (Synth, perf
// runs, tests) with no allocation: open with '{', then AppendKey and a
// value per field, then '}' (or ClosePadded).

// AppendKey writes the key of the next field of an object being built,
// with the comma before it unless it is the first.
func AppendKey(dst []byte, name string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

// ClosePadded ends a record with a FieldPad string taken from fill, sized
// so the whole record is exactly size bytes (or as small as it can be when
// the fields alone are larger). fill must be at least size long and hold no
// character that needs escaping.
func ClosePadded(dst []byte, size int, fill []byte) []byte {
	dst = AppendKey(dst, FieldPad)
	n := max(size-len(dst)-len(`""}`), 0)
	dst = append(dst, '"')
	dst = append(dst, fill[:min(n, len(fill))]...)
	return append(dst, '"', '}')
}
