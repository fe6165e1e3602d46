package perf

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/inferops/inferops/pipeline"
)

// HistoryFile is the history's name in the state dir.
const HistoryFile = "perf-history.jsonl"

// AppendHistory adds res as one JSON line to the history at path, creating
// the file and its directory. The comparison is not stored: it is derived
// from the lines before it and would only grow each line.
func AppendHistory(path string, res Result) error {
	res.Comparison = nil
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("perf history: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("perf history: cannot create %s: %v (set --history to a writable file)", filepath.Dir(path), errors.Unwrap(err))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("perf history: %v (set --history to a writable file)", err)
	}
	// One write per line: O_APPEND keeps concurrent runs' lines whole.
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("perf history: write %s: %v", path, err)
	}
	return nil
}

// ReadHistory returns every run in the history, oldest first. A missing file
// is an empty history; a damaged line is skipped (a run killed mid-write must
// not make the history unreadable) and reported in the error count.
func ReadHistory(path string) (runs []Result, skipped int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("perf history: %v", err)
	}
	defer f.Close()
	runs, skipped, err = readHistory(f)
	if err != nil {
		return runs, skipped, fmt.Errorf("perf history %s: %v", path, err)
	}
	return runs, skipped, nil
}

// readHistory reads the JSON lines of a history file.
func readHistory(r io.Reader) (runs []Result, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Result
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Scenario == "" {
			skipped++
			continue
		}
		runs = append(runs, r)
	}
	return runs, skipped, sc.Err()
}

// LastRuns returns the most recent run of each scenario in the history.
func LastRuns(path string) (map[string]Result, error) {
	runs, _, err := ReadHistory(path)
	if err != nil {
		return nil, err
	}
	m := map[string]Result{}
	for _, r := range runs {
		m[r.Scenario] = r
	}
	return m, nil
}

// LastRun is the most recent run of scenario, or nil.
func LastRun(path, scenario string) (*Result, error) {
	m, err := LastRuns(path)
	if err != nil {
		return nil, err
	}
	if r, ok := m[scenario]; ok {
		return &r, nil
	}
	return nil, nil
}

// Verdicts of a figure against the previous run.
const (
	Better = "better"
	Worse  = "worse"
	Same   = "same"
)

// sameWithin is the relative change below which a figure is "same": run to
// run noise on a shared machine is larger than that anyway.
const sameWithin = 0.02

// Comparison is a run against the previous run of the same scenario.
type Comparison struct {
	PreviousRunID string    `json:"previous_run_id"`
	PreviousAt    time.Time `json:"previous_at"`
	// SameTarget is false when the two runs targeted different rates,
	// sizes or models: then the figures differ by design, not by
	// regression.
	SameTarget bool     `json:"same_target"`
	Figures    []Change `json:"figures"`
}

// Change is one figure's movement.
type Change struct {
	Name     string  `json:"name"`
	Previous float64 `json:"previous"`
	Current  float64 `json:"current"`
	// ChangePct is (current-previous)/previous in percent; 0 when previous
	// was 0.
	ChangePct float64 `json:"change_pct"`
	Verdict   string  `json:"verdict"`
}

// Compare judges cur against prev figure by figure.
func Compare(prev, cur Result) Comparison {
	c := Comparison{
		PreviousRunID: prev.RunID,
		PreviousAt:    prev.StartedAt,
		SameTarget: prev.TargetRate == cur.TargetRate && prev.PayloadBytes == cur.PayloadBytes && prev.Streams == cur.Streams &&
			modelOf(prev) == modelOf(cur),
	}
	add := func(name string, p, q float64, higherIsBetter bool) {
		ch := Change{Name: name, Previous: p, Current: q, Verdict: Same}
		if p != 0 {
			ch.ChangePct = round3((q - p) / math.Abs(p) * 100)
		}
		moved := q != p && (p == 0 || math.Abs(q-p)/math.Abs(p) > sameWithin)
		if moved {
			if (q > p) == higherIsBetter {
				ch.Verdict = Better
			} else {
				ch.Verdict = Worse
			}
		}
		c.Figures = append(c.Figures, ch)
	}
	add("kafka_msgs_per_sec", prev.KafkaMsgsPerSec, cur.KafkaMsgsPerSec, true)
	add("tf_qps", prev.TFQPS, cur.TFQPS, true)
	add("latency_avg_ms", prev.Latency.Avg, cur.Latency.Avg, false)
	add("latency_p50_ms", prev.Latency.P50, cur.Latency.P50, false)
	add("latency_p95_ms", prev.Latency.P95, cur.Latency.P95, false)
	add("latency_p99_ms", prev.Latency.P99, cur.Latency.P99, false)
	add("latency_p999_ms", prev.Latency.P999, cur.Latency.P999, false)
	add("latency_max_ms", prev.Latency.Max, cur.Latency.Max, false)
	add("lost", float64(prev.Lost), float64(cur.Lost), false)
	add("errors", float64(prev.Errors), float64(cur.Errors), false)
	if prev.FindMax != nil && cur.FindMax != nil {
		add("max_rate", prev.FindMax.MaxRate, cur.FindMax.MaxRate, true)
	}
	return c
}

func modelOf(r Result) string {
	if r.Model == "" {
		return pipeline.DefaultModel
	}
	return r.Model
}

// Figure returns the named change, if present.
func (c Comparison) Figure(name string) (Change, bool) {
	for _, f := range c.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return Change{}, false
}
