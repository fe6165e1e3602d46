package tui

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// Styles holds every style the console uses, so a theme or NO_COLOR is one
// decision in one place. Colours are the 16 basic ANSI colours only: they
// look right on 16-colour terminals (TERM=screen), respect the user's own
// palette, and cost the fewest bytes per change over SSH.
type Styles struct {
	NoColor bool

	Title, TitleFocused   lipgloss.Style
	Border, BorderFocused lipgloss.Style
	Dim, Bold, Key        lipgloss.Style
	OK, Warn, Err, Info   lipgloss.Style
	Header, HeaderBrand   lipgloss.Style
	Selected, ColumnHead  lipgloss.Style
	Sorted                lipgloss.Style
	SeriesIn, SeriesOut   lipgloss.Style
	P50, P95, P99, PMax   lipgloss.Style
	Overlay               lipgloss.Style
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
	st := Styles{
		NoColor:       noColor,
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
		Info:          s().Foreground(c(4)),
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
		Overlay:       s(),
	}
	if noColor {
		st.Dim = s()
		st.Border = s()
		st.BorderFocused = s().Bold(true)
		st.ColumnHead = s().Bold(true)
		st.Sorted = s().Bold(true)
		st.Err = s().Bold(true)
	}
	return st
}

// status returns the style for a Burrow/health/breaker word.
func (s Styles) status(word string) lipgloss.Style {
	switch word {
	case "OK", "closed", "AVAILABLE", "Stable", "PASS":
		return s.OK
	case "WARN", "half-open", "LOADING", "START", "UNLOADING", "PreparingRebalance", "CompletingRebalance", "paused":
		return s.Warn
	case "STALL", "STOP", "REWIND", "ERR", "open", "FAIL", "Dead":
		return s.Err
	}
	return s.Header
}

func (s Styles) level(l Level) lipgloss.Style {
	switch l {
	case Warn:
		return s.Warn
	case Error:
		return s.Err
	}
	return s.Dim
}
