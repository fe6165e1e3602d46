package pipeline

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/inferops/inferops/infer/tfpb"
)

// The reasons of records for a schema other than the seed's (dlq.go lists
// them all); their detail names the input, e.g.
// `ad_ids has 3 values, the model wants 4 (shape [-1,4])`.

// parse reads a record of any schema in one pass: TF Serving's JSON row
// format per input (numbers, true/false, strings or {"b64": "..."}, nested
// lists for the inner dimensions, a bare value for a [-1] input).
func (s *Schema) parse(b []byte, v *Values) *RecordError {
	p := jsonScanner{b: b}
	p.ws()
	if !p.eat('{') {
		return p.fail("want a JSON object with a field per model input")
	}
	p.ws()
	if !p.eat('}') {
		for {
			p.ws()
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
			if string(key) == s.idField {
				if rerr := p.id(v, s.idField); rerr != nil {
					return rerr
				}
			} else if i, ok := s.byField[string(key)]; ok {
				if v.seen[i] {
					return recordErr(ReasonInvalidJSON, "duplicate key %q", truncate(key, 40))
				}
				v.seen[i] = true
				if rerr := p.input(&s.inputs[i], v, i); rerr != nil {
					return rerr
				}
			} else if !p.skip(0) {
				return p.fail("bad value for key %q", truncate(key, 40))
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
	for i := range s.inputs {
		if !v.seen[i] {
			return recordErr(ReasonMissingInput, "no %q field%s", s.inputs[i].field, s.inputs[i].named())
		}
	}
	return nil
}

// named says which input a field feeds when the names differ.
func (in *schemaInput) named() string {
	if in.field == in.spec.Name {
		return ""
	}
	return " (input " + strconv.Quote(in.spec.Name) + ")"
}

// cursor is where the parser is inside one input's value: the index at
// each level, for details like ad_ids[1][2].
type cursor struct {
	in    *schemaInput
	idx   [maxRank + 1]int
	depth int
}

func (c *cursor) path() string {
	b := []byte(c.in.spec.Name)
	for d := 0; d < c.depth; d++ {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(c.idx[d]), 10)
		b = append(b, ']')
	}
	if c.in.field != c.in.spec.Name {
		b = append(b, " (field "...)
		b = strconv.AppendQuote(b, c.in.field)
		b = append(b, ')')
	}
	return string(b)
}

func (c *cursor) shape() string { return "shape " + FormatShape(c.in.spec.Shape) }

// input parses one input's value and records where it landed in v.
func (p *jsonScanner) input(in *schemaInput, v *Values, i int) *RecordError {
	if p.lit("null") {
		return recordErr(ReasonMissingInput, "%q is null%s", in.field, in.named())
	}
	sp := span{dimOff: len(v.dims)}
	switch in.kind {
	case KindFloat32:
		sp.off = len(v.float32s)
	case KindFloat64:
		sp.off = len(v.float64s)
	case KindInt64:
		sp.off = len(v.int64s)
	case KindBool:
		sp.off = len(v.bools)
	case KindString:
		sp.off = len(v.strs)
	}
	rank := -1 // an unknown rank is learnt from the record's first value
	if in.inner != nil {
		rank = len(in.inner)
		v.dims = append(v.dims, in.inner...)
	}
	c := cursor{in: in}
	if rerr := p.level(&c, v, sp.dimOff, &rank); rerr != nil {
		return rerr
	}
	// Sizes the record decides and never saw (below an empty list) are 0.
	for d := sp.dimOff; d < len(v.dims); d++ {
		if v.dims[d] < 0 {
			v.dims[d] = 0
		}
	}
	sp.rank = len(v.dims) - sp.dimOff
	switch in.kind {
	case KindFloat32:
		sp.n = len(v.float32s) - sp.off
	case KindFloat64:
		sp.n = len(v.float64s) - sp.off
	case KindInt64:
		sp.n = len(v.int64s) - sp.off
	case KindBool:
		sp.n = len(v.bools) - sp.off
	case KindString:
		sp.n = len(v.strs) - sp.off
	}
	v.spans[i] = sp
	return nil
}

// level parses the value at c.depth: a list when the depth is above the
// rank, else one element. dims[dimOff+d] is the size of level d: the
// signature's, or -1 until the record's first list at that level sets it.
func (p *jsonScanner) level(c *cursor, v *Values, dimOff int, rank *int) *RecordError {
	d := c.depth
	if p.i >= len(p.b) {
		return p.fail("unterminated value of %s", c.path())
	}
	isList := p.b[p.i] == '['
	if *rank < 0 { // unknown rank: the first element's depth is the rank
		if !isList || d == maxRank {
			*rank = d
		} else if len(v.dims)-dimOff == d {
			v.dims = append(v.dims, -1)
		}
	}
	if d == *rank {
		if isList {
			if d == 0 {
				return recordErr(ReasonWrongShape, "%s is a list; the model wants one value (%s)", c.path(), c.shape())
			}
			return recordErr(ReasonWrongShape, "%s is a list; the model wants a value there (%s)", c.path(), c.shape())
		}
		return p.element(c, v)
	}
	if !isList {
		start := p.i
		if !p.skip(0) {
			return p.fail("bad value in %s", c.path())
		}
		want := "a list"
		if n := v.dims[dimOff+d]; n >= 0 {
			want = "a list of " + strconv.FormatInt(n, 10)
		}
		return recordErr(ReasonWrongShape, "%s = %s is not a list; the model wants %s there (%s)", c.path(), truncate(p.b[start:p.i], 40), want, c.shape())
	}
	p.i++
	p.ws()
	n := 0
	if !p.eat(']') {
		for {
			p.ws()
			c.idx[d] = n
			c.depth = d + 1
			if rerr := p.level(c, v, dimOff, rank); rerr != nil {
				return rerr
			}
			c.depth = d
			n++
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat(']') {
				break
			}
			return p.fail("want ',' or ']' in %s", c.path())
		}
	}
	switch want := v.dims[dimOff+d]; {
	case want < 0:
		v.dims[dimOff+d] = int64(n)
	case int64(n) != want:
		if c.in.inner == nil || c.in.inner[d] < 0 {
			return recordErr(ReasonWrongShape, "%s has %d values where others have %d: a record's lists must not be ragged (%s)", c.path(), n, want, c.shape())
		}
		return recordErr(ReasonWrongShape, "%s has %d values, the model wants %d (%s)", c.path(), n, want, c.shape())
	}
	return nil
}

// element parses one value of the input's dtype.
func (p *jsonScanner) element(c *cursor, v *Values) *RecordError {
	in := c.in
	start := p.i
	c0 := p.b[p.i]
	isNum := c0 == '-' || isDigit(c0)
	switch in.kind {
	case KindFloat32, KindFloat64:
		switch {
		case isNum:
			if c0 == '-' && p.lit("-Infinity") {
				return recordErr(ReasonNonFinite, "%s is -Infinity", c.path())
			}
			if !p.number() {
				return p.fail("bad number in %s", c.path())
			}
			num := p.b[start:p.i]
			if in.kind == KindFloat64 {
				f, ok := parseFloat64(num)
				if !ok {
					return recordErr(ReasonOutOfRange, "%s = %s is out of range for %s", c.path(), truncate(num, 40), in.spec.DType)
				}
				v.float64s = append(v.float64s, f)
				return nil
			}
			f, err := parseFloat32(num)
			if err == nil && in.spec.DType == tfpb.DataType_DT_HALF && math.Abs(float64(f)) > maxHalf {
				err = errNonFinite
			}
			if err != nil {
				return recordErr(ReasonOutOfRange, "%s = %s is out of range for %s", c.path(), truncate(num, 40), in.spec.DType)
			}
			v.float32s = append(v.float32s, f)
			return nil
		case p.lit("NaN"):
			return recordErr(ReasonNonFinite, "%s is NaN", c.path())
		case p.lit("Infinity"):
			return recordErr(ReasonNonFinite, "%s is Infinity", c.path())
		}
		return p.wrongType(c, start, "a number")
	case KindInt64:
		if !isNum {
			return p.wrongType(c, start, "an integer")
		}
		if !p.number() {
			return p.fail("bad number in %s", c.path())
		}
		num := p.b[start:p.i]
		x, rerr := in.integer(num)
		if rerr != nil {
			rerr.Detail = c.path() + " = " + truncate(num, 40) + rerr.Detail
			return rerr
		}
		v.int64s = append(v.int64s, x)
		return nil
	case KindBool:
		switch {
		case p.lit("true"):
			v.bools = append(v.bools, true)
			return nil
		case p.lit("false"):
			v.bools = append(v.bools, false)
			return nil
		}
		return p.wrongType(c, start, "true or false")
	}
	// KindString: "text" or {"b64": "..."}.
	switch c0 {
	case '"':
		ks, ke, ok := p.strict()
		if !ok {
			return p.fail("bad string in %s", c.path())
		}
		var s []byte
		s, v.scratch = unquote(p.b[ks+1:ke-1], v.scratch)
		v.strs = append(v.strs, s)
		return nil
	case '{':
		return p.b64(c, v)
	}
	return p.wrongType(c, start, "a string or {\"b64\": \"...\"}")
}

// maxHalf is the largest finite IEEE binary16 value.
const maxHalf = 65504

func (p *jsonScanner) wrongType(c *cursor, start int, want string) *RecordError {
	if !p.skip(0) {
		return p.fail("bad value in %s", c.path())
	}
	return recordErr(ReasonWrongType, "%s = %s is not %s (%s)", c.path(), truncate(p.b[start:p.i], 40), want, c.in.spec.DType)
}

// b64 reads TF Serving's binary string form, {"b64": "<base64>"}.
func (p *jsonScanner) b64(c *cursor, v *Values) *RecordError {
	start := p.i
	p.i++
	p.ws()
	ks, ke, ok := p.str()
	if ok {
		p.ws()
		ok = string(p.b[ks+1:ke-1]) == "b64" && p.eat(':')
	}
	if !ok {
		p.i = start
		return p.wrongType(c, start, "a string or {\"b64\": \"...\"}")
	}
	p.ws()
	vs, ve, ok := p.strict()
	if !ok {
		p.i = start
		return p.wrongType(c, start, "a string or {\"b64\": \"...\"}")
	}
	p.ws()
	if !p.eat('}') {
		p.i = start
		return p.wrongType(c, start, "a string or {\"b64\": \"...\"}")
	}
	enc := p.b[vs+1 : ve-1]
	off := len(v.scratch)
	v.scratch = append(v.scratch, make([]byte, max(base64.StdEncoding.DecodedLen(len(enc)), base64.RawStdEncoding.DecodedLen(len(enc))))...)
	n, err := base64.StdEncoding.Decode(v.scratch[off:], enc)
	if err != nil {
		// TF accepts unpadded base64 too.
		n, err = base64.RawStdEncoding.Decode(v.scratch[off:], enc)
	}
	if err != nil {
		v.scratch = v.scratch[:off]
		return recordErr(ReasonWrongType, "%s = {\"b64\": %s} is not valid base64 (%s)", c.path(), truncate(p.b[vs:ve], 40), c.in.spec.DType)
	}
	v.scratch = v.scratch[:off+n]
	v.strs = append(v.strs, v.scratch[off:off+n:off+n])
	return nil
}

// integer reads a validated JSON number as an integer of the input's
// dtype, exactly: no rounding through float64, so the full int64 range
// (and uint64's) is served and one past it is refused. The error's detail
// is completed by the caller with the path and the number.
func (in *schemaInput) integer(num []byte) (int64, *RecordError) {
	neg := num[0] == '-'
	digits := num
	if neg {
		digits = num[1:]
	}
	var mag uint64
	for _, ch := range digits {
		if !isDigit(ch) {
			return 0, &RecordError{Reason: ReasonWrongType, Detail: " is not an integer (" + in.spec.DType.String() + ")"}
		}
		d := uint64(ch - '0')
		if mag > (math.MaxUint64-d)/10 {
			return 0, in.outOfRange()
		}
		mag = mag*10 + d
	}
	if in.spec.DType == tfpb.DataType_DT_UINT64 {
		if neg && mag != 0 {
			return 0, in.outOfRange()
		}
		return int64(mag), nil
	}
	var x int64
	switch {
	case !neg && mag <= math.MaxInt64:
		x = int64(mag)
	case neg && mag <= 1<<63:
		x = int64(-mag) // two's complement: -2^63 included
	default:
		return 0, in.outOfRange()
	}
	if x < in.lo || x > in.hi {
		return 0, in.outOfRange()
	}
	return x, nil
}

func (in *schemaInput) outOfRange() *RecordError {
	lo, hi := strconv.FormatInt(in.lo, 10), strconv.FormatInt(in.hi, 10)
	if in.spec.DType == tfpb.DataType_DT_UINT64 {
		hi = strconv.FormatUint(math.MaxUint64, 10)
	}
	return &RecordError{Reason: ReasonOutOfRange, Detail: " is out of range for " + in.spec.DType.String() + " (" + lo + ".." + hi + ")"}
}

// parseFloat64 converts a validated JSON number, correctly rounded;
// plain decimals with a mantissa below 2^53 and at most 22 fraction digits
// divide two exact doubles, which IEEE rounds correctly.
func parseFloat64(s []byte) (float64, bool) {
	if f, ok := fastFloat64(s); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

var pow10f64 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

func fastFloat64(s []byte) (float64, bool) {
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
			if mant >= 1<<53 {
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
	if frac >= len(pow10f64) {
		return 0, false
	}
	f := float64(mant) / pow10f64[frac]
	if neg {
		f = -f
	}
	return f, true
}

// unquote returns the bytes of a JSON string body (validated by str): the
// body itself when it has no escapes, else its decoding appended to
// scratch (invalid surrogates become U+FFFD, as encoding/json does).
func unquote(body, scratch []byte) (s, grown []byte) {
	esc := -1
	for i, c := range body {
		if c == '\\' {
			esc = i
			break
		}
	}
	if esc < 0 {
		return body, scratch
	}
	off := len(scratch)
	scratch = append(scratch, body[:esc]...)
	for i := esc; i < len(body); {
		c := body[i]
		if c != '\\' {
			scratch = append(scratch, c)
			i++
			continue
		}
		switch e := body[i+1]; e {
		case 'u':
			r := hex4(body[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(body) && body[i] == '\\' && body[i+1] == 'u' {
					r2 = hex4(body[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			scratch = utf8.AppendRune(scratch, r)
		default:
			i += 2
			switch e {
			case 'b':
				e = '\b'
			case 'f':
				e = '\f'
			case 'n':
				e = '\n'
			case 'r':
				e = '\r'
			case 't':
				e = '\t'
			}
			scratch = append(scratch, e)
		}
	}
	return scratch[off:len(scratch):len(scratch)], scratch
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
