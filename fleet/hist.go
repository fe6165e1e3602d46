package fleet

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Hist is a latency distribution in microseconds as a snapshot carries it:
// an HDR histogram (the worker's 10 s window), so the fleet's percentiles
// are computed from the merged counts of every instance, never averaged
// from per-instance percentiles. The zero Hist is empty.
//
// On the wire it is one base64 string of a small binary form (histFormat):
// the geometry, then only the runs of non-empty buckets (MarshalBinary). A
// 10 s window of a busy worker has a few hundred non-empty buckets out of
// 2,560, so this is a few hundred bytes where the dense counts are 20 KB.
type Hist struct {
	h *hdrhistogram.Histogram
}

// histFormat is the first byte of the binary form; a reader refuses others.
const histFormat = 1

// Bounds a decoder accepts, so a hostile record cannot make it allocate
// more than a few hundred KB: values up to 2^42 us (50 days), at most 3
// significant digits.
const (
	maxHistHighest = 1 << 42
	maxHistSig     = 3
	maxHistCount   = 1 << 50
)

// HistOf wraps a histogram the caller no longer changes (worker windows are
// fresh copies). Nil is the empty Hist.
func HistOf(h *hdrhistogram.Histogram) Hist { return Hist{h: h} }

// Count is the number of samples.
func (x Hist) Count() int64 {
	if x.h == nil {
		return 0
	}
	return x.h.TotalCount()
}

// Quantile is the latency at q in [0, 100] (hdrhistogram's percentile
// scale), 0 when empty.
func (x Hist) Quantile(q float64) time.Duration {
	if x.Count() == 0 {
		return 0
	}
	return time.Duration(x.h.ValueAtQuantile(q)) * time.Microsecond
}

// Max is the largest sample (to the histogram's precision), 0 when empty.
func (x Hist) Max() time.Duration {
	if x.Count() == 0 {
		return 0
	}
	return time.Duration(x.h.Max()) * time.Microsecond
}

// Histogram is the underlying histogram, nil when empty; callers must not
// change it.
func (x Hist) Histogram() *hdrhistogram.Histogram { return x.h }

// Merge returns the union of the samples of x and the others. Histograms of
// the same geometry (every worker's) merge exactly, bucket by bucket.
func Merge(hs ...Hist) Hist {
	var out *hdrhistogram.Histogram
	for _, x := range hs {
		if x.Count() == 0 {
			continue
		}
		if out == nil {
			out = hdrhistogram.New(x.h.LowestTrackableValue(), x.h.HighestTrackableValue(), int(x.h.SignificantFigures()))
		}
		out.Merge(x.h)
	}
	return Hist{h: out}
}

// Latency is a summary for tables and JSON, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Summary is x's percentiles in milliseconds.
func (x Hist) Summary() Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{Count: x.Count(), P50ms: ms(x.Quantile(50)), P95ms: ms(x.Quantile(95)), P99ms: ms(x.Quantile(99)), MaxMs: ms(x.Max())}
}

// MarshalBinary writes the compact form; an empty Hist is no bytes. After
// the geometry come runs of adjacent non-empty buckets, each as the gap
// since the previous run, its length and its counts: a latency
// distribution is a few dense runs, so most buckets cost one byte.
func (x Hist) MarshalBinary() ([]byte, error) {
	if x.Count() == 0 {
		return nil, nil
	}
	s := x.h.Export()
	type run struct{ start, end int } // [start, end)
	var runs []run
	for i := 0; i < len(s.Counts); i++ {
		if s.Counts[i] <= 0 {
			continue
		}
		j := i
		for j < len(s.Counts) && s.Counts[j] > 0 {
			j++
		}
		runs = append(runs, run{i, j})
		i = j
	}
	b := make([]byte, 0, 16+len(runs)*4+len(s.Counts)/4)
	b = append(b, histFormat)
	b = binary.AppendUvarint(b, uint64(s.LowestTrackableValue))
	b = binary.AppendUvarint(b, uint64(s.HighestTrackableValue))
	b = binary.AppendUvarint(b, uint64(s.SignificantFigures))
	b = binary.AppendUvarint(b, uint64(len(runs)))
	prev := 0
	for _, r := range runs {
		b = binary.AppendUvarint(b, uint64(r.start-prev))
		b = binary.AppendUvarint(b, uint64(r.end-r.start))
		for _, c := range s.Counts[r.start:r.end] {
			b = binary.AppendUvarint(b, uint64(c))
		}
		prev = r.end
	}
	return b, nil
}

// UnmarshalBinary reads the compact form, refusing anything out of bounds
// (it reads other processes' records, which may be corrupt or hostile).
func (x *Hist) UnmarshalBinary(b []byte) error {
	*x = Hist{}
	if len(b) == 0 {
		return nil
	}
	if b[0] != histFormat {
		return fmt.Errorf("histogram format %d (want %d: written by a newer inferops?)", b[0], histFormat)
	}
	r := &varintReader{b: b[1:]}
	lo, hi, sig, nruns := r.next(), r.next(), r.next(), r.next()
	if r.err != nil {
		return r.err
	}
	if lo < 1 || lo > 1<<20 || hi < 2*lo || hi > maxHistHighest || sig < 1 || sig > maxHistSig {
		return fmt.Errorf("histogram geometry %d..%d, %d digits: out of bounds", lo, hi, sig)
	}
	size := uint64(countsLen(int64(lo), int64(hi), int(sig)))
	if nruns > size {
		return fmt.Errorf("histogram has %d runs, its geometry only %d buckets", nruns, size)
	}
	counts := make([]int64, size)
	at, total := uint64(0), uint64(0)
	for i := uint64(0); i < nruns; i++ {
		gap, n := r.next(), r.next()
		if r.err != nil {
			return r.err
		}
		if n == 0 || gap > size || n > size || at+gap+n > size || (i > 0 && gap == 0) {
			return errors.New("histogram bucket index out of range")
		}
		at += gap
		for j := uint64(0); j < n; j++ {
			c := r.next()
			if r.err != nil {
				return r.err
			}
			if c == 0 || c > maxHistCount || total+c > maxHistCount {
				return errors.New("histogram count out of range")
			}
			counts[at] = int64(c)
			total += c
			at++
		}
	}
	if len(r.b) != 0 {
		return fmt.Errorf("histogram has %d trailing bytes", len(r.b))
	}
	x.h = hdrhistogram.Import(&hdrhistogram.Snapshot{
		LowestTrackableValue: int64(lo), HighestTrackableValue: int64(hi), SignificantFigures: int64(sig), Counts: counts,
	})
	return nil
}

// MarshalJSON writes the compact form as a base64 string ("" when empty).
func (x Hist) MarshalJSON() ([]byte, error) {
	b, err := x.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (x *Hist) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	return x.UnmarshalBinary(b)
}

type varintReader struct {
	b   []byte
	err error
}

func (r *varintReader) next() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("histogram is truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

var geometries struct {
	sync.Mutex
	m map[[3]int64]int
}

// countsLen is how many buckets a geometry has. Every worker uses the same
// geometry and building one allocates its counts, so a few are cached; a
// stream of odd geometries (a hostile record) is computed each time.
func countsLen(lo, hi int64, sig int) int {
	k := [3]int64{lo, hi, int64(sig)}
	geometries.Lock()
	n, ok := geometries.m[k]
	geometries.Unlock()
	if ok {
		return n
	}
	n = len(hdrhistogram.New(lo, hi, sig).Export().Counts)
	geometries.Lock()
	if geometries.m == nil {
		geometries.m = map[[3]int64]int{}
	}
	if len(geometries.m) < 8 {
		geometries.m[k] = n
	}
	geometries.Unlock()
	return n
}
