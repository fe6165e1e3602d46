// Package doctor applies the seed's tuning and troubleshooting knowledge to a
// live system: host kernel settings, Kafka cluster and topic settings, TF
// Serving health (the checks behind `inferops doctor`), the recommended
// configuration files (`--print`), and the live advice rules the console
// shows (Advise).
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the verdict of one check. Only FAIL makes doctor exit 1: WARN
// is tuning advice, INFO is context (e.g. the distribution), SKIP means the
// check could not run because something it depends on failed first.
type Status string

const (
	Pass Status = "PASS"
	Info Status = "INFO"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Sections, in the order the report prints them.
const (
	SectionHost      = "Host"
	SectionKafka     = "Kafka"
	SectionTFServing = "TF Serving"
)

// Check is one verdict with everything an operator needs to act on it.
type Check struct {
	Section string `json:"section"`
	ID      string `json:"id"`             // stable machine name, e.g. "net.core.somaxconn"
	Name    string `json:"name"`           // human label
	Host    string `json:"host,omitempty"` // the TF Serving host, when --tfserving names several
	Status  Status `json:"status"`
	Seen    string `json:"seen"`
	Want    string `json:"want,omitempty"`
	Why     string `json:"why,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// Summary counts checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Info int `json:"info"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Report is the outcome of one doctor run.
type Report struct {
	Checks  []Check `json:"checks"`
	Summary Summary `json:"summary"`
	// OK is false when any check failed; doctor then exits 1.
	OK bool `json:"ok"`
}

// NewReport totals the checks.
func NewReport(checks ...[]Check) Report {
	r := Report{Checks: []Check{}}
	for _, cs := range checks {
		r.Checks = append(r.Checks, cs...)
	}
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			r.Summary.Pass++
		case Info:
			r.Summary.Info++
		case Warn:
			r.Summary.Warn++
		case Fail:
			r.Summary.Fail++
		case Skip:
			r.Summary.Skip++
		}
	}
	r.OK = r.Summary.Fail == 0
	return r
}

// WriteJSON writes the report as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func statusColour(s Status) string {
	switch s {
	case Pass:
		return ansiGreen
	case Warn:
		return ansiYellow
	case Fail:
		return ansiRed
	case Info:
		return ansiCyan
	}
	return ansiDim
}

// WriteText writes the report grouped by section. PASS lines stay one line;
// anything else gets its why and fix underneath, because that is what the
// operator reads in an incident. colour adds ANSI colours (callers pass true
// only on a terminal without NO_COLOR).
func (r Report) WriteText(w io.Writer, colour bool) error {
	paint := func(code, s string) string {
		if !colour {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	width = min(width, 34)
	section := ""
	for _, c := range r.Checks {
		if c.Section != section {
			if section != "" {
				b.WriteString("\n")
			}
			section = c.Section
			b.WriteString(paint(ansiBold, section) + "\n")
		}
		val := c.Seen
		// A PASS met its want; repeating it only pushes lines past 80
		// columns on an SSH terminal (--json keeps it).
		if c.Want != "" && (c.Status == Warn || c.Status == Fail) {
			val += paint(ansiDim, " (want "+c.Want+")")
		}
		fmt.Fprintf(&b, "  %s  %-*s  %s\n", paint(statusColour(c.Status), fmt.Sprintf("%-4s", c.Status)), width, c.Name, val)
		if c.Status == Warn || c.Status == Fail {
			if c.Why != "" {
				fmt.Fprintf(&b, "        %s %s\n", paint(ansiDim, "why:"), c.Why)
			}
			if c.Fix != "" {
				for i, line := range strings.Split(c.Fix, "\n") {
					label := "fix:"
					if i > 0 {
						label = "    "
					}
					fmt.Fprintf(&b, "        %s %s\n", paint(ansiDim, label), line)
				}
			}
		}
	}
	s := r.Summary
	verdict := paint(ansiGreen+ansiBold, "healthy")
	if !r.OK {
		verdict = paint(ansiRed+ansiBold, "problems found")
	} else if s.Warn > 0 {
		verdict = paint(ansiYellow+ansiBold, "healthy, with tuning advice")
	}
	fmt.Fprintf(&b, "\n%d pass, %d warn, %d fail", s.Pass, s.Warn, s.Fail)
	if s.Skip > 0 {
		fmt.Fprintf(&b, ", %d skipped", s.Skip)
	}
	fmt.Fprintf(&b, ": %s\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}
