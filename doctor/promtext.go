package doctor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// MetricsPath is where TF Serving (and the embedded server) serve Prometheus
// text on the REST port.
const MetricsPath = "/monitoring/prometheus/metrics"

// batchingPrefix marks TF Serving's server-side batching metrics: they only
// exist when the server runs with --enable_batching.
const batchingPrefix = ":tensorflow:serving:batching_session:"

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	Name   string
	Labels string // raw, without braces
	Value  float64
}

// parsePromText reads the sample lines of a Prometheus text exposition. It
// is deliberately small: doctor only needs names, sums and counts, and
// TF Serving's exporter writes one sample per line with no timestamps.
func parsePromText(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s promSample
		rest := ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("metrics line %q: unbalanced braces", line)
			}
			s.Name, s.Labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			name, r, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("metrics line %q: no value", line)
			}
			s.Name, rest = name, r
		}
		if !validMetricName(s.Name) {
			// Found by FuzzParsePromText: "} 0" read as a sample named "}".
			return nil, fmt.Errorf("metrics line %q: %q is not a metric name", line, s.Name)
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: value %q: %v", line, fields[0], err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// validMetricName is Prometheus's [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// batchingStats summarises the batching metrics: which exist, and the
// average processed batch size when the histogram has observations.
type batchingStats struct {
	Present  bool
	Names    []string
	Batches  float64 // processed batches observed
	AvgBatch float64 // records per processed batch
}

func batchingFrom(samples []promSample) batchingStats {
	var st batchingStats
	seen := map[string]bool{}
	var sum, count float64
	for _, s := range samples {
		if !strings.HasPrefix(s.Name, batchingPrefix) {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.Name, "_bucket"), "_sum"), "_count")
		if !seen[base] {
			seen[base] = true
			st.Names = append(st.Names, base)
		}
		switch s.Name {
		case batchingPrefix + "processed_batch_size_sum":
			sum += s.Value
		case batchingPrefix + "processed_batch_size_count":
			count += s.Value
		}
	}
	st.Present = len(st.Names) > 0
	if count > 0 {
		st.Batches, st.AvgBatch = count, sum/count
	}
	return st
}

// errNoMetrics means the REST port answered but Prometheus export is off.
type errNoMetrics struct{ status string }

func (e errNoMetrics) Error() string { return "metrics not exposed (HTTP " + e.status + ")" }

// fetchMetrics GETs the Prometheus page from a REST host:port.
func fetchMetrics(ctx context.Context, restAddr string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+restAddr+MetricsPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		return nil, errNoMetrics{resp.Status}
	}
	return parsePromText(io.LimitReader(resp.Body, 32*1024*1024))
}
