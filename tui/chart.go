package tui

import (
	"math"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/v2/canvas"
	"github.com/NimbleMarkets/ntcharts/v2/canvas/graph"
)

// series is one line of a chart.
type series struct {
	pts   []Sample
	style Paint
}

// sweepGap is how many seconds of old data are blanked ahead of the cursor,
// so the eye finds "now".
const sweepGap = 6

// sweepChart draws braille line charts (ntcharts' braille grid and line
// rasteriser) in sweep mode, like a patient monitor: x is wall-clock
// seconds modulo the window, one braille dot column per second, and new
// points overwrite the oldest in place. A scrolling chart changes every cell
// every second; a sweep changes one column, which is what keeps the console
// under 2 KB/s over SSH with live charts. The y scale is a 1-2-5 ceiling of
// the visible maximum, so it changes only when the load crosses a step.
func sweepChart(st Styles, w, h int, now time.Time, yfmt func(float64) string, ss ...series) []string {
	lines := make([]string, h)
	if w < 8 || h < 2 {
		return lines
	}
	// Y labels take the width of the widest label.
	max := 0.0
	window := int64(0)
	labelW := 0
	var ymax float64
	for pass := 0; pass < 2; pass++ {
		gw := w - labelW - 1
		window = int64(gw * 2)
		from := now.Unix() - window + sweepGap
		max = 0
		for _, s := range ss {
			for _, p := range s.pts {
				if p.T.Unix() > from && p.V > max {
					max = p.V
				}
			}
		}
		ymax = niceCeil(max)
		labelW = len(yfmt(ymax))
		if l := len(yfmt(ymax / 2)); l > labelW {
			labelW = l
		}
	}
	gw := w - labelW - 1
	if gw < 4 {
		return lines
	}
	from := now.Unix() - window + sweepGap
	cells := make([][]rune, h)
	owner := make([][]int8, h)
	for y := range cells {
		cells[y] = make([]rune, gw)
		owner[y] = make([]int8, gw)
		for x := range owner[y] {
			owner[y][x] = -1
		}
	}
	for si, s := range ss {
		grid := graph.NewBrailleGrid(gw, h, 0, float64(window-1), 0, ymax)
		var prev canvas.Point
		prevX := int64(-10)
		for _, p := range s.pts {
			t := p.T.Unix()
			if t <= from || t > now.Unix() {
				continue
			}
			x := t % window
			gp := grid.GridPoint(canvas.Float64Point{X: float64(x), Y: math.Min(p.V, ymax)})
			if x > prevX && x-prevX <= 3 {
				for _, lp := range graph.GetLinePoints(prev, gp) {
					grid.Set(lp)
				}
			} else {
				grid.Set(gp)
			}
			prev, prevX = gp, x
		}
		for y, row := range grid.BraillePatterns() {
			if y >= h {
				break
			}
			for x, r := range row {
				if x >= gw || r == 0x2800 || r == 0 {
					continue
				}
				if cells[y][x] == 0 {
					cells[y][x] = r
				} else {
					cells[y][x] = 0x2800 | ((cells[y][x] - 0x2800) | (r - 0x2800))
				}
				owner[y][x] = int8(si)
			}
		}
	}
	var b strings.Builder
	for y := 0; y < h; y++ {
		b.Reset()
		// Labels at the top, middle and bottom rows only.
		lbl := ""
		switch y {
		case 0:
			lbl = yfmt(ymax)
		case (h - 1) / 2:
			if h >= 5 {
				lbl = yfmt(ymax / 2)
			}
		case h - 1:
			lbl = yfmt(0)
		}
		tick := "│"
		if lbl != "" {
			tick = "┤"
		}
		b.WriteString(st.Dim.Render(right(lbl, labelW) + tick))
		run := -2
		var seg strings.Builder
		flush := func() {
			if seg.Len() == 0 {
				return
			}
			if run >= 0 {
				b.WriteString(ss[run].style.Render(seg.String()))
			} else {
				b.WriteString(seg.String())
			}
			seg.Reset()
		}
		for x := 0; x < gw; x++ {
			o := int(owner[y][x])
			if o != run {
				flush()
				run = o
			}
			if r := cells[y][x]; r != 0 {
				seg.WriteRune(r)
			} else {
				seg.WriteByte(' ')
			}
		}
		flush()
		lines[y] = b.String()
	}
	return lines
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
