package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Dist is the distribution of one numeric model output (every element of
// every row) as the fleet telemetry carries it during a rollout: counts in
// fixed, value-independent bins, so the distributions of any number of
// instances merge exactly by adding counts, and two versions' distributions
// can be compared bin for bin (PSI) without either side knowing the other's
// range in advance.
//
// The bins are log-linear like an HDR histogram's, over the whole real
// line: zero (|x| < 2^-40) has its own bin; otherwise a value's binary
// exponent (clamped to -40..40) and the first DistSubBins-th of its
// mantissa pick the bin, signed. A bin is 1/64 of its octave, so relative
// resolution is about 1.6% wherever the values lie: a sigmoid's 0.02..0.98
// or a regression's 10^4. NaN and infinities are counted apart (NonFinite).
//
// The zero Dist is empty and ready; a Dist is not safe for concurrent use.
type Dist struct {
	N         uint64           // finite values
	Sum       float64          // of the finite values, for the exact mean
	NonFinite uint64           // NaN, +Inf, -Inf
	Bins      map[int32]uint64 // bin index -> count; absent = 0
}

// DistSubBins is how many bins split each octave.
const DistSubBins = 64

const (
	distMinExp = -40
	distMaxExp = 40
	// maxDistBins bounds what a decoder accepts: every bin of both signs.
	maxDistBins = 2*(distMaxExp-distMinExp+1)*DistSubBins + 1
)

// DistBin is the bin of x (x finite).
func DistBin(x float64) int32 {
	a := math.Abs(x)
	if a < math.Ldexp(1, distMinExp-1) {
		return 0
	}
	frac, exp := math.Frexp(a) // a = frac * 2^exp, frac in [0.5, 1)
	if exp < distMinExp {
		exp, frac = distMinExp, 0.5
	}
	if exp > distMaxExp {
		exp, frac = distMaxExp, math.Nextafter(1, 0)
	}
	sub := int32((frac - 0.5) * 2 * DistSubBins)
	if sub >= DistSubBins {
		sub = DistSubBins - 1
	}
	i := 1 + int32(exp-distMinExp)*DistSubBins + sub
	if x < 0 {
		return -i
	}
	return i
}

// distBinValue is a representative value of bin i (its midpoint).
func distBinValue(i int32) float64 {
	if i == 0 {
		return 0
	}
	a := i
	if a < 0 {
		a = -a
	}
	a--
	exp := int(a/DistSubBins) + distMinExp
	sub := float64(a % DistSubBins)
	frac := 0.5 + (sub+0.5)/(2*DistSubBins)
	v := math.Ldexp(frac, exp)
	if i < 0 {
		return -v
	}
	return v
}

// Add counts one value.
func (d *Dist) Add(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		d.NonFinite++
		return
	}
	if d.Bins == nil {
		d.Bins = make(map[int32]uint64, 32)
	}
	d.Bins[DistBin(x)]++
	d.N++
	d.Sum += x
}

// Merge adds o's counts to d.
func (d *Dist) Merge(o Dist) {
	if o.N == 0 && o.NonFinite == 0 {
		return
	}
	if d.Bins == nil {
		d.Bins = make(map[int32]uint64, len(o.Bins))
	}
	for i, c := range o.Bins {
		d.Bins[i] += c
	}
	d.N += o.N
	d.Sum += o.Sum
	d.NonFinite += o.NonFinite
}

// Clone is a copy the caller owns.
func (d Dist) Clone() Dist {
	c := d
	if d.Bins != nil {
		c.Bins = make(map[int32]uint64, len(d.Bins))
		for i, n := range d.Bins {
			c.Bins[i] = n
		}
	}
	return c
}

// Mean is the exact mean of the finite values (0 when empty).
func (d Dist) Mean() float64 {
	if d.N == 0 {
		return 0
	}
	return d.Sum / float64(d.N)
}

// sortedBins is d's non-empty bins in value order.
func (d Dist) sortedBins() []int32 {
	idx := make([]int32, 0, len(d.Bins))
	for i, c := range d.Bins {
		if c > 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx) // negative bins are negative values: index order is value order
	return idx
}

// Quantile is the value at q in [0, 1], to the bins' resolution (0 when
// empty).
func (d Dist) Quantile(q float64) float64 {
	if d.N == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(d.N)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	idx := d.sortedBins()
	for _, i := range idx {
		seen += d.Bins[i]
		if seen >= rank {
			return distBinValue(i)
		}
	}
	return distBinValue(idx[len(idx)-1])
}

// PSIBins is how many groups PSI compares: the baseline's deciles, the
// convention of credit-risk and model-monitoring practice.
const PSIBins = 10

// psiFloor stands in for an empty group's share, so a group one side never
// fills costs a large but finite amount instead of infinity.
const psiFloor = 1e-4

// PSI is the population stability index of cur against base:
// sum over groups of (cur% - base%) * ln(cur% / base%), with the groups cut
// at base's deciles (whole bins: a group never splits a bin, so a base that
// puts most of its mass in one bin has fewer groups). Values above 0.25 are
// conventionally a significant shift, below 0.1 none. ok is false when
// either side is empty.
func PSI(base, cur Dist) (psi float64, ok bool) {
	psi, _, ok = PSIGroups(base, cur)
	return psi, ok
}

// PSINoise is the PSI two samples of one distribution show on average,
// from sampling alone: PSI is close to a chi-square statistic over N, so
// its expectation is about (groups-1) * (1/nBase + 1/nCur). With 50
// candidate values over 10 groups that is 0.18, as much as a real shift
// of note: a gate must allow for it.
func PSINoise(groups int, nBase, nCur uint64) float64 {
	if groups < 2 || nBase == 0 || nCur == 0 {
		return 0
	}
	return float64(groups-1) * (1/float64(nBase) + 1/float64(nCur))
}

// PSIGroups is PSI and the number of groups it compared.
func PSIGroups(base, cur Dist) (psi float64, groups int, ok bool) {
	if base.N == 0 || cur.N == 0 {
		return 0, 0, false
	}
	// Group boundaries: the last bin of each base decile.
	idx := base.sortedBins()
	var cuts []int32
	var seen uint64
	next := 1
	for _, i := range idx {
		seen += base.Bins[i]
		for next < PSIBins && float64(seen) >= float64(next)*float64(base.N)/PSIBins {
			if len(cuts) == 0 || cuts[len(cuts)-1] != i {
				cuts = append(cuts, i)
			}
			next++
		}
	}
	// cuts are ascending; group g holds bins <= cuts[g] (and > cuts[g-1]);
	// the last group everything above.
	groups = len(cuts) + 1
	b, c := make([]float64, groups), make([]float64, groups)
	group := func(i int32) int { return sort.Search(len(cuts), func(g int) bool { return i <= cuts[g] }) }
	for i, n := range base.Bins {
		b[group(i)] += float64(n)
	}
	for i, n := range cur.Bins {
		c[group(i)] += float64(n)
	}
	for g := range groups {
		bp := max(b[g]/float64(base.N), psiFloor)
		cp := max(c[g]/float64(cur.N), psiFloor)
		psi += (cp - bp) * math.Log(cp/bp)
	}
	return psi, groups, true
}

// distWire is Dist on the wire: bins as [index, count] pairs in index
// order, so a record is deterministic and compact.
type distWire struct {
	N         uint64      `json:"n"`
	Sum       float64     `json:"sum"`
	NonFinite uint64      `json:"nonfinite,omitempty"`
	Bins      [][2]uint64 `json:"bins,omitempty"` // index as int32 bits, count
}

// MarshalJSON writes d as distWire.
func (d Dist) MarshalJSON() ([]byte, error) {
	w := distWire{N: d.N, Sum: d.Sum, NonFinite: d.NonFinite}
	if math.IsNaN(w.Sum) || math.IsInf(w.Sum, 0) {
		w.Sum = 0 // cannot happen from Add; keeps the record JSON
	}
	for _, i := range d.sortedBins() {
		w.Bins = append(w.Bins, [2]uint64{uint64(uint32(i)), d.Bins[i]})
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote, refusing what no Dist can
// hold (it reads other processes' records, which may be corrupt): bins out
// of range or repeated, counts that do not add up to N.
func (d *Dist) UnmarshalJSON(b []byte) error {
	var w distWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("output distribution: %w", err)
	}
	if len(w.Bins) > maxDistBins {
		return fmt.Errorf("output distribution has %d bins, at most %d exist", len(w.Bins), maxDistBins)
	}
	out := Dist{N: w.N, Sum: w.Sum, NonFinite: w.NonFinite}
	var total uint64
	if len(w.Bins) > 0 {
		out.Bins = make(map[int32]uint64, len(w.Bins))
	}
	limit := int32((distMaxExp-distMinExp+1)*DistSubBins) + 1
	for _, p := range w.Bins {
		if p[0] > math.MaxUint32 {
			return errors.New("output distribution bin index out of range")
		}
		i := int32(uint32(p[0]))
		if i >= limit || i <= -limit {
			return errors.New("output distribution bin index out of range")
		}
		if _, dup := out.Bins[i]; dup || p[1] == 0 {
			return errors.New("output distribution bin repeated or empty")
		}
		if total+p[1] < total {
			return errors.New("output distribution counts overflow")
		}
		total += p[1]
		out.Bins[i] = p[1]
	}
	if total != w.N {
		return fmt.Errorf("output distribution bins hold %d values, n says %d", total, w.N)
	}
	*d = out
	return nil
}
