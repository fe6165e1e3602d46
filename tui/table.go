// Column tables shared by the panels: narrow panels drop low-priority
// columns instead of wrapping.

package tui

import (
	"strings"
)

// column is one column of a panel table; narrow panels drop the columns
// with the highest prio first.
type column struct {
	head  string
	w     int
	prio  int
	right bool
}

// fitColumns returns which columns fit in w cells (one space between).
func fitColumns(cols []column, w int) []bool {
	keep := make([]bool, len(cols))
	for i := range keep {
		keep[i] = true
	}
	for {
		total, worst, wi := 0, -1, -1
		for i, c := range cols {
			if !keep[i] {
				continue
			}
			total += c.w + 1
			if c.prio > worst {
				worst, wi = c.prio, i
			}
		}
		if total-1 <= w || worst <= 0 {
			return keep
		}
		keep[wi] = false
	}
}

// columnHeads are the columns' heads, as a row's cells.
func columnHeads(cols []column) []string {
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	return heads
}

// sty adapts a style to a cell formatter.
func sty(s Paint) func(string) string { return func(x string) string { return s.Render(x) } }

func tableRow(cols []column, keep []bool, cells []string, styles []func(string) string) string {
	var b strings.Builder
	first := true
	for i, c := range cols {
		if !keep[i] {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		s := left(cells[i], c.w)
		if c.right {
			s = right(cells[i], c.w)
		}
		if styles != nil && styles[i] != nil {
			s = styles[i](s)
		}
		b.WriteString(s)
	}
	return b.String()
}

func clampStart(s, n, rows int) int {
	if s > n-rows {
		s = n - rows
	}
	if s < 0 {
		s = 0
	}
	return s
}
