package tfserving

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// PromSample is one sample line of the Prometheus text format.
type PromSample struct {
	Name   string
	Labels string // raw, without braces
	Value  float64
}

// Label is the value of one label of s ("" when absent).
func (s PromSample) Label(name string) string {
	rest := s.Labels
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok || len(v) == 0 || v[0] != '"' {
			return ""
		}
		// The value runs to the next unescaped quote.
		i, esc := 1, false
		var b strings.Builder
		for ; i < len(v); i++ {
			c := v[i]
			if esc {
				switch c {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(c)
				}
				esc = false
				continue
			}
			if c == '\\' {
				esc = true
				continue
			}
			if c == '"' {
				break
			}
			b.WriteByte(c)
		}
		if strings.TrimSpace(k) == name {
			return b.String()
		}
		if i >= len(v) {
			return ""
		}
		rest = v[i+1:]
	}
	return ""
}

// ParsePromText reads the sample lines of a Prometheus text exposition. It
// is deliberately small: TF Serving's exporter writes one sample per line
// with no timestamps, and callers need names, labels and values.
func ParsePromText(r io.Reader) ([]PromSample, error) {
	var out []PromSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s PromSample
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
			// "} 0" would read as a sample named "}".
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

// NoMetricsError means the REST port answered but Prometheus export is off.
type NoMetricsError struct{ Status string }

func (e NoMetricsError) Error() string { return "metrics not exposed (HTTP " + e.Status + ")" }

// FetchMetrics GETs a Prometheus page (TF Serving's is
// http://host:8501/monitoring/prometheus/metrics).
func FetchMetrics(ctx context.Context, url string) ([]PromSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		return nil, NoMetricsError{resp.Status}
	}
	return ParsePromText(io.LimitReader(resp.Body, 32*1024*1024))
}
