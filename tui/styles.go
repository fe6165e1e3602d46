package tui

import (
	"image/color"
	"strings"

	"charm.land/lipgloss/v2"
)

// Styles holds every style the console uses, so a theme or NO_COLOR is one
// decision in one place. Colours are the 16 basic ANSI colours only: they
// look right on 16-colour terminals (TERM=screen), respect the user's own
// palette, and cost the fewest bytes per change over SSH.
type Styles struct {
	NoColor bool

	Title, TitleFocused   Paint
	Border, BorderFocused Paint
	Dim, Bold, Key        Paint
	OK, Warn, Err, Info   Paint
	Header, HeaderBrand   Paint
	Selected, ColumnHead  Paint
	Sorted                Paint
	SeriesIn, SeriesOut   Paint
	P50, P95, P99, PMax   Paint
}

// Paint is a lipgloss style reduced to its escape prefix and suffix.
// lipgloss stays the one definition of every style; Paint only makes
// applying it to a short single-line span cheap (a 120x40 frame paints a
// few hundred spans, and Style.Render measures and splits each one).
type Paint struct{ pre, suf string }

func newPaint(s lipgloss.Style) Paint {
	r := s.Render("\x00")
	i := strings.IndexByte(r, 0)
	if i < 0 {
		return Paint{}
	}
	return Paint{pre: r[:i], suf: r[i+1:]}
}

// Render wraps the joined strings in the style's escapes.
func (p Paint) Render(strs ...string) string {
	s := strings.Join(strs, "")
	if p.pre == "" || s == "" {
		return s
	}
	return p.pre + s + p.suf
}

// DefaultStyles returns the colour theme, or a colourless one (bold and
// reverse only, which NO_COLOR allows) when noColor is set.
func DefaultStyles(noColor bool) Styles {
	c := func(n int) color.Color {
		if noColor {
			return lipgloss.NoColor{}
		}
		return lipgloss.ANSIColor(n)
	}
	s := lipgloss.NewStyle
	ls := struct {
		Title, TitleFocused   lipgloss.Style
		Border, BorderFocused lipgloss.Style
		Dim, Bold, Key        lipgloss.Style
		OK, Warn, Err, Info   lipgloss.Style
		Header, HeaderBrand   lipgloss.Style
		Selected, ColumnHead  lipgloss.Style
		Sorted                lipgloss.Style
		SeriesIn, SeriesOut   lipgloss.Style
		P50, P95, P99, PMax   lipgloss.Style
	}{
		Title:         s().Bold(true),
		TitleFocused:  s().Bold(true).Foreground(c(14)),
		Border:        s().Foreground(c(8)),
		BorderFocused: s().Foreground(c(6)),
		Dim:           s().Foreground(c(8)),
		Bold:          s().Bold(true),
		Key:           s().Bold(true).Foreground(c(6)),
		OK:            s().Foreground(c(2)),
		Warn:          s().Foreground(c(3)),
		Err:           s().Foreground(c(1)).Bold(true),
		Info:          s(), // blue is unreadable on dark backgrounds
		Header:        s(),
		HeaderBrand:   s().Bold(true).Foreground(c(6)),
		Selected:      s().Reverse(true),
		ColumnHead:    s().Bold(true).Foreground(c(8)),
		Sorted:        s().Bold(true).Foreground(c(6)),
		SeriesIn:      s().Foreground(c(6)),
		SeriesOut:     s().Foreground(c(2)),
		P50:           s().Foreground(c(2)),
		P95:           s().Foreground(c(6)),
		P99:           s().Foreground(c(3)),
		PMax:          s().Foreground(c(1)),
	}
	if noColor {
		ls.Dim = s()
		ls.Border = s()
		ls.BorderFocused = s().Bold(true)
		ls.ColumnHead = s().Bold(true)
		ls.Sorted = s().Bold(true)
		ls.Err = s().Bold(true)
	}
	return Styles{
		NoColor: noColor,
		Title:   newPaint(ls.Title), TitleFocused: newPaint(ls.TitleFocused),
		Border: newPaint(ls.Border), BorderFocused: newPaint(ls.BorderFocused),
		Dim: newPaint(ls.Dim), Bold: newPaint(ls.Bold), Key: newPaint(ls.Key),
		OK: newPaint(ls.OK), Warn: newPaint(ls.Warn), Err: newPaint(ls.Err), Info: newPaint(ls.Info),
		Header: newPaint(ls.Header), HeaderBrand: newPaint(ls.HeaderBrand),
		Selected: newPaint(ls.Selected), ColumnHead: newPaint(ls.ColumnHead), Sorted: newPaint(ls.Sorted),
		SeriesIn: newPaint(ls.SeriesIn), SeriesOut: newPaint(ls.SeriesOut),
		P50: newPaint(ls.P50), P95: newPaint(ls.P95), P99: newPaint(ls.P99), PMax: newPaint(ls.PMax),
	}
}

// status returns the style for a Burrow/health/breaker word.
func (s Styles) status(word string) Paint {
	switch word {
	case "OK", "closed", "AVAILABLE", "Stable", "PASS", "up":
		return s.OK
	case "WARN", "half-open", "LOADING", "START", "UNLOADING", "PreparingRebalance", "CompletingRebalance", "paused", "ejected", "excluded":
		return s.Warn
	case "STALL", "STOP", "REWIND", "ERR", "open", "FAIL", "Dead", "down":
		return s.Err
	}
	return s.Header
}

func (s Styles) level(l Level) Paint {
	switch l {
	case Warn:
		return s.Warn
	case Error:
		return s.Err
	}
	return s.Dim
}
