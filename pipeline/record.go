package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// RecordError is why one input record cannot be served. Reason is the stable
// kind (a Reason* constant); Detail says where, for the operator reading the
// DLQ header.
type RecordError struct {
	Reason string
	Detail string
}

func (e *RecordError) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

func recordErr(reason, format string, args ...any) *RecordError {
	return &RecordError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// maxDepth bounds nesting inside values we skip, so a hostile record of a
// million '[' costs a DLQ entry, not a stack overflow.
const maxDepth = 64

// Parse reads one input record into v (reset first). Every signature input
// is read from its field, the id from the id field; other fields are
// validated as JSON and skipped (producers add timestamps and padding). A
// record that cannot feed the model is refused with the reason and a
// detail naming the input; v is then partly filled and must not be used.
func (s *Schema) Parse(b []byte, v *Values) *RecordError {
	v.reset(len(s.inputs))
	switch {
	case s.raw:
		v.strs = append(v.strs, b)
		v.spans[0] = span{off: 0, n: 1}
		return nil
	case s.seed:
		return parseSeed(b, s.idField, v, s.width)
	}
	return s.parse(b, v)
}

// parseSeed reads the seed's input record {"id": "...", "features": [..]}
// with a single pass over b and no allocations beyond growing v's column.
func parseSeed(b []byte, idField string, v *Values, width int) *RecordError {
	p := jsonScanner{b: b}
	p.ws()
	if !p.eat('{') {
		return p.fail("want a JSON object like {\"id\": \"...\", \"features\": [...]}")
	}
	seenFeatures := false
	p.ws()
	if !p.eat('}') {
		for {
			p.ws()
			// Keys are short, so they get the full check (found by
			// FuzzParseRecord: a raw control character in a key was taken).
			ks, ke, ok := p.strict()
			if !ok {
				return p.fail("want an object key")
			}
			key := b[ks+1 : ke-1]
			p.ws()
			if !p.eat(':') {
				return p.fail("want ':'")
			}
			p.ws()
			switch {
			case string(key) == FieldFeatures: // no allocation: compiler special case
				if seenFeatures {
					return recordErr(ReasonInvalidJSON, "duplicate key \"features\"")
				}
				seenFeatures = true
				var rerr *RecordError
				if v.float32s, rerr = p.features(v.float32s[:0]); rerr != nil {
					return rerr
				}
			case string(key) == idField:
				if rerr := p.id(v, idField); rerr != nil {
					return rerr
				}
			default:
				if !p.skip(0) {
					return p.fail("bad value for key %q", truncate(key, 40))
				}
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat('}') {
				break
			}
			return p.fail("want ',' or '}'")
		}
	}
	p.ws()
	if p.i != len(b) {
		return p.fail("trailing data after the object")
	}
	if !seenFeatures {
		return recordErr(ReasonMissingFeatures, "no \"features\" key")
	}
	n := len(v.float32s)
	if n == 0 {
		return recordErr(ReasonMissingFeatures, "\"features\" is empty")
	}
	if width > 0 && n != width {
		return recordErr(ReasonWrongWidth, "%d features, the model wants %d", n, width)
	}
	v.dims = append(v.dims, int64(n))
	v.spans[0] = span{off: 0, n: n, dimOff: 0, rank: 1}
	return nil
}

// id reads the id field's value: a string or a number, copied verbatim
// into the result, or null (then the result gets a generated id).
func (p *jsonScanner) id(v *Values, field string) *RecordError {
	b := p.b
	start := p.i
	switch {
	case p.i < len(b) && b[p.i] == '"':
		if _, _, ok := p.strict(); !ok {
			return p.fail("bad string in %q", field)
		}
		v.ID = b[start:p.i]
	case p.i < len(b) && (b[p.i] == '-' || isDigit(b[p.i])):
		if !p.number() {
			return p.fail("bad number in %q", field)
		}
		v.ID = b[start:p.i]
	case p.lit("null"):
		v.ID = nil
	default:
		return recordErr(ReasonBadID, "%q must be a string or a number", field)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) fail(format string, args ...any) *RecordError {
	return &RecordError{Reason: ReasonInvalidJSON, Detail: fmt.Sprintf(format, args...) + " at byte " + strconv.Itoa(p.i)}
}

func (p *jsonScanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// str scans a JSON string starting at p.i and returns its span including the
// quotes. It validates escapes. Raw control characters are only rejected by
// strict (used for ids, which are copied into results verbatim); skipped
// strings such as a producer's padding are scanned with SIMD IndexByte, which
// is most of the parse time of a padded 2 KB record otherwise.
func (p *jsonScanner) str() (start, end int, ok bool) {
	start = p.i
	if !p.eat('"') {
		return 0, 0, false
	}
	b := p.b
	for {
		q := bytes.IndexByte(b[p.i:], '"')
		if q < 0 {
			return 0, 0, false
		}
		seg := b[p.i : p.i+q]
		bs := bytes.IndexByte(seg, '\\')
		if bs < 0 {
			p.i += q + 1
			return start, p.i, true
		}
		// An escape before the quote: step over it and look again.
		p.i += bs + 1
		if p.i >= len(b) {
			return 0, 0, false
		}
		switch b[p.i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			p.i++
		case 'u':
			if len(b)-p.i < 5 {
				return 0, 0, false
			}
			for _, h := range b[p.i+1 : p.i+5] {
				if !isHex(h) {
					return 0, 0, false
				}
			}
			p.i += 5
		default:
			return 0, 0, false
		}
	}
}

// strict scans a string and also rejects raw control characters.
func (p *jsonScanner) strict() (start, end int, ok bool) {
	start, end, ok = p.str()
	if !ok {
		return 0, 0, false
	}
	for _, c := range p.b[start:end] {
		if c < 0x20 {
			return 0, 0, false
		}
	}
	return start, end, true
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number scans a JSON number per RFC 8259.
func (p *jsonScanner) number() bool {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	p.i = i
	return true
}

// skip validates and skips any JSON value.
func (p *jsonScanner) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, _, ok := p.str()
		return ok
	case c == '-' || isDigit(c):
		return p.number()
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '[':
		p.i++
		p.ws()
		if p.eat(']') {
			return true
		}
		for {
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			return p.eat(']')
		}
	case c == '{':
		p.i++
		p.ws()
		if p.eat('}') {
			return true
		}
		for {
			p.ws()
			if _, _, ok := p.str(); !ok {
				return false
			}
			p.ws()
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			return p.eat('}')
		}
	}
	return false
}

var errNonFinite = errors.New("non-finite")

// features parses the "features" array into dst. Python's json module writes
// NaN, Infinity and -Infinity, which are not JSON: they are reported as
// non_finite (what the producer meant) rather than invalid_json.
func (p *jsonScanner) features(dst []float32) ([]float32, *RecordError) {
	if !p.eat('[') {
		if p.i < len(p.b) && p.b[p.i] == '{' {
			return dst, recordErr(ReasonNonNumeric, "\"features\" is an object; want an array of numbers")
		}
		if p.skip(0) {
			return dst, recordErr(ReasonNonNumeric, "\"features\" is not an array of numbers")
		}
		return dst, p.fail("bad value for \"features\"")
	}
	p.ws()
	if p.eat(']') {
		return dst, nil
	}
	for {
		p.ws()
		idx := len(dst)
		start := p.i
		if p.i >= len(p.b) {
			return dst, p.fail("unterminated \"features\"")
		}
		c := p.b[p.i]
		switch {
		case c == '-' || isDigit(c):
			if c == '-' && p.lit("-Infinity") {
				return dst, recordErr(ReasonNonFinite, "features[%d] is -Infinity", idx)
			}
			if !p.number() {
				return dst, p.fail("bad number in features[%d]", idx)
			}
			v, err := parseFloat32(p.b[start:p.i])
			if err != nil {
				return dst, recordErr(ReasonNonFinite, "features[%d] = %s overflows float32", idx, truncate(p.b[start:p.i], 40))
			}
			dst = append(dst, v)
		case p.lit("NaN"):
			return dst, recordErr(ReasonNonFinite, "features[%d] is NaN", idx)
		case p.lit("Infinity"):
			return dst, recordErr(ReasonNonFinite, "features[%d] is Infinity", idx)
		default:
			if !p.skip(0) {
				return dst, p.fail("bad value in features[%d]", idx)
			}
			return dst, recordErr(ReasonNonNumeric, "features[%d] = %s is not a number", idx, truncate(p.b[start:p.i], 40))
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat(']') {
			return dst, nil
		}
		return dst, p.fail("want ',' or ']' in \"features\"")
	}
}

// parseFloat32 converts a validated JSON number, correctly rounded like
// strconv.ParseFloat(s, 32). Plain decimals with a small mantissa (the common
// case: "0.1234567", "-3.5", "42") take an exact fast path.
func parseFloat32(s []byte) (float32, error) {
	if v, ok := fastFloat(s); ok {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(s), 32)
	if err != nil || math.IsInf(f, 0) {
		return 0, errNonFinite
	}
	return float32(f), nil
}

// pow10 holds powers of ten that are exact in float32 (5^10 < 2^24).
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// fastFloat handles [-]digits[.digits] without exponent when the mantissa is
// below 2^24 and there are at most 10 fraction digits. Then mantissa and 10^frac
// are both exact float32 values, and a float64 division rounded to float32 is
// correctly rounded (53 >= 2*24+2, so double rounding cannot bite).
func fastFloat(s []byte) (float32, bool) {
	i := 0
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg = true
		i++
	}
	var mant uint64
	frac := 0
	seenDot := false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			if mant >= 1<<24 {
				return 0, false
			}
			if seenDot {
				frac++
			}
		case c == '.' && !seenDot:
			seenDot = true
		default:
			return 0, false
		}
	}
	if frac >= len(pow10) {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return float32(f), true
}
