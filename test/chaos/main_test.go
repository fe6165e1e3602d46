// Package chaos tries faults on the real thing: it builds the inferops
// binary once and runs `serve` and `worker` as separate processes on
// ephemeral ports, then kills them, takes the model server away and breaks
// the network between them (toxiproxy), with about 1% malformed input
// throughout. Every scenario ends by reading ai_input, ai_output and the
// DLQ back and checking, id by id, that every input has a result or a dead
// letter; it counts the duplicates and measures how long the pipeline took
// to produce again after each fault.
//
// `go test ./test/chaos` runs the short variants (part of `make test`);
// `make chaos` runs the long ones (-long: more records, more crashes, a 60 s
// model server outage) and prints the table README.md's "Reliability: what
// was tried" comes from. INFEROPS_BIN runs an already built binary instead
// (e.g. an older one, to compare).
package chaos

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

var (
	long = flag.Bool("long", false, "run the long variants (make chaos): more records, more crashes, longer outages")
	bin  string // the inferops binary under test
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if p := os.Getenv("INFEROPS_BIN"); p != "" {
			bin = p
		} else {
			dir, err := os.MkdirTemp("", "inferops-chaos-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			if bin, err = stacktest.Build(dir); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		code := m.Run()
		printFigures()
		return code
	}()
	os.Exit(code)
}

// figure is one row of the reliability table.
type figure struct {
	Fault      string
	In         int // distinct input ids in ai_input
	Results    int // distinct ids with a result
	DeadLetter int // distinct ids with a dead letter
	Lost       int
	Duplicates int
	Recovery   string
	Note       string
}

var (
	figMu   sync.Mutex
	figures []figure
)

func record(t *testing.T, f figure) {
	t.Helper()
	t.Logf("%s: in %d, results %d + dead letters %d, lost %d, duplicates %d, recovery %s %s",
		f.Fault, f.In, f.Results, f.DeadLetter, f.Lost, f.Duplicates, f.Recovery, f.Note)
	figMu.Lock()
	figures = append(figures, f)
	figMu.Unlock()
}

// printFigures prints the table in the README's form.
func printFigures() {
	figMu.Lock()
	defer figMu.Unlock()
	if len(figures) == 0 {
		return
	}
	variant := "short"
	if *long {
		variant = "long"
	}
	fmt.Printf("\nReliability (%s variants, binary %s):\n\n", variant, bin)
	fmt.Println("| fault | records in | results + dead letters | lost | duplicates | recovery |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, f := range figures {
		fault := f.Fault
		if f.Note != "" {
			fault += " (" + f.Note + ")"
		}
		fmt.Printf("| %s | %s | %s + %s | %d | %s | %s |\n", fault, thousands(f.In), thousands(f.Results), thousands(f.DeadLetter), f.Lost, thousands(f.Duplicates), f.Recovery)
	}
	fmt.Println()
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// pick returns the short or the long variant of a number.
func pick[T any](short, longV T) T {
	if *long {
		return longV
	}
	return short
}

func ms(d time.Duration) string {
	if d < 0 {
		return "none seen"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
