package tui

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// fit pads or truncates s (which may hold ANSI styles) to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := width(s)
	switch {
	case sw == w:
		return s
	case sw < w:
		return s + strings.Repeat(" ", w-sw)
	}
	return ansi.Truncate(s, w-1, "") + "…"
}

// width is the cells s takes. It skips CSI escapes and counts one cell per
// rune, which is exact for everything the console draws (ASCII, box
// drawing, braille, block elements); anything that might be wide or
// combining goes to the full grapheme-aware measurement.
func width(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			if i+1 < len(s) && s[i+1] == '[' {
				j := i + 2
				for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
					j++
				}
				i = j + 1
				continue
			}
			return ansi.StringWidth(s)
		case c < 0x80:
			n++
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if !narrow(r) {
				return ansi.StringWidth(s)
			}
			n++
			i += size
		}
	}
	return n
}

// narrow reports runes known to take one cell: Latin-1, general
// punctuation, arrows, box drawing, blocks, geometric shapes, braille.
func narrow(r rune) bool {
	return r < 0x300 || (r >= 0x2010 && r <= 0x2027) || (r >= 0x2190 && r <= 0x21ff) ||
		(r >= 0x2500 && r <= 0x25ff) || (r >= 0x2800 && r <= 0x28ff)
}

// left and right align plain (unstyled) text in w cells.
func left(s string, w int) string { return fit(s, w) }

func right(s string, w int) string {
	sw := width(s)
	if sw >= w {
		return fit(s, w)
	}
	return strings.Repeat(" ", w-sw) + s
}

// num formats a count with 3 significant digits (12, 1.2k, 34.5M): columns
// keep their width and a value that moves by a few units does not redraw.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var s string
	switch {
	case v < 1000:
		if v != math.Trunc(v) && v < 10 {
			s = strconv.FormatFloat(v, 'f', 1, 64)
		} else {
			s = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		}
	case v < 1e6:
		s = short(v/1e3) + "k"
	case v < 1e9:
		s = short(v/1e6) + "M"
	default:
		s = short(v/1e9) + "G"
	}
	if neg {
		return "-" + s
	}
	return s
}

func short(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

func inum(v int64) string { return num(float64(v)) }

// dur formats a latency: 850µs, 4.2ms, 120ms, 1.5s, 2m3s.
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Truncate(time.Second).String()
}

// secs formats lag in seconds.
func secs(s float64) string {
	switch {
	case s <= 0 || math.IsNaN(s):
		return "0s"
	case s < 10:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	case s < 3600:
		return strconv.FormatFloat(s, 'f', 0, 64) + "s"
	}
	return strconv.FormatFloat(s/3600, 'f', 1, 64) + "h"
}

// age is how old a panel's data is, shown in its title.
func age(now, at time.Time) string {
	if at.IsZero() {
		return "no data"
	}
	d := now.Sub(at)
	// Sources refresh every second on their own timers, so a fresh panel is
	// 0-1.9 s old; calling that "live" keeps the title from flipping
	// between 0s and 1s (bytes over SSH) while a stalled source still shows.
	if d < 2*time.Second {
		return "live"
	}
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())) + "s"
	}
	return d.Truncate(time.Second).String()
}

// sparkRunes draws values as a one-line sparkline; cheap, and a shifting
// sparkline changes only the cells whose level changed.
var sparkRunes = []rune("▁▂▃▄▅▆▇█")

func sparkline(vals []float64, w int) string {
	if w <= 0 {
		return ""
	}
	if len(vals) > w {
		vals = vals[len(vals)-w:]
	}
	max := 0.0
	for _, v := range vals {
		if v > max {
			max = v
		}
	}
	var b strings.Builder
	for i := len(vals); i < w; i++ {
		b.WriteByte(' ')
	}
	for _, v := range vals {
		i := 0
		if max > 0 {
			i = int(v / max * float64(len(sparkRunes)-1))
		}
		if i < 0 {
			i = 0
		}
		b.WriteRune(sparkRunes[i])
	}
	return b.String()
}

// Skewness returns the peak-to-average ratio and the coefficient of
// variation of per-partition values, as kafkatop shows skew: a hot
// partition is a classic incident and a mean hides it.
func Skewness(vals []float64) (peakToAvg, cv float64) {
	if len(vals) == 0 {
		return 0, 0
	}
	var sum, max float64
	for _, v := range vals {
		sum += v
		if v > max {
			max = v
		}
	}
	mean := sum / float64(len(vals))
	if mean == 0 {
		return 0, 0
	}
	var ss float64
	for _, v := range vals {
		ss += (v - mean) * (v - mean)
	}
	return max / mean, math.Sqrt(ss/float64(len(vals))) / mean
}

func ansiWidth(s string) int { return width(s) }

func errCount(st Styles, n int64) string {
	if n > 0 {
		return st.Err.Render(inum(n))
	}
	return "0"
}
