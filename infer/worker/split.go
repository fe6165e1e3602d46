package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
)

// Split is a rollout's traffic split as a pool applies it: Share of the
// records go to Candidate and the rest to Baseline, chosen by a hash of
// the record key (of the id when there is no key, of the source offset
// when there is neither) salted with the rollout's ID, so one user sees
// one version throughout a rollout, every instance and restart agrees,
// and a larger share keeps the users the smaller one had. Shadow of the
// baseline's records are also sent to Candidate: its predictions are
// compared with the baseline's and never written.
type Split struct {
	ID        string
	Baseline  tfserving.Target
	Candidate tfserving.Target
	Share     float64 // fraction of records, 0..1
	Shadow    float64 // fraction of the baseline's records, 0..1
}

// Validate checks a split before a pool applies it.
func (s Split) Validate() error {
	var errs []error
	if s.ID == "" {
		errs = append(errs, errors.New("split has no rollout id"))
	}
	if s.Baseline == s.Candidate {
		errs = append(errs, fmt.Errorf("split sends %s to itself", s.Baseline))
	}
	if !(s.Share >= 0 && s.Share <= 1) {
		errs = append(errs, fmt.Errorf("split share %v: want 0..1", s.Share))
	}
	if !(s.Shadow >= 0 && s.Shadow <= 1) {
		errs = append(errs, fmt.Errorf("shadow share %v: want 0..1", s.Shadow))
	}
	return errors.Join(errs...)
}

// Rollout roles of a side's stats.
const (
	SideBaseline  = "baseline"
	SideCandidate = "candidate"
	SideShadow    = "shadow"
)

// SideStats is what one side of a rollout did over the latency window
// (the last 10 s): the rows it served and the Predicts behind them, their
// latency, and the distribution of each numeric output.
type SideStats struct {
	Target  string
	Version int64  // the version that answered last, 0 before any
	Rows    uint64 // rows served (shadow: rows compared)
	Calls   uint64 // Predict attempts
	Errors  uint64 // failed Predict attempts
	DLQ     uint64 // rows the model rejected (dead-lettered)
	Skipped uint64 // shadow: sampled rows not sent because the shadow budget was in use
	// First is the latency of the side's first Predict since the rollout
	// was applied here: a version's first requests after it loads are
	// the slow ones (what the warm-up is for). 0 before any.
	First time.Duration
	// Predict and end-to-end latency of the side's rows (a shadow has no
	// end-to-end: nothing is written).
	Predict  LatencySummary
	EndToEnd LatencySummary
	// Outputs is every numeric output's distribution, by output name,
	// since the split's share last changed (the rollout's step): PSI wants
	// every value of the step, not the last 10 s of a small share.
	Outputs map[string]pipeline.Dist
	// Diff is, for a shadow, |candidate - baseline| per output over the
	// elements compared since the step began.
	Diff map[string]Diff
}

// Diff summarises absolute differences between two versions' outputs.
type Diff struct {
	N   uint64
	Max float64
	Sum float64
}

// Mean is the mean absolute difference (0 when nothing was compared).
func (d Diff) Mean() float64 {
	if d.N == 0 {
		return 0
	}
	return d.Sum / float64(d.N)
}

// RolloutStats is a pool's view of the rollout it applies.
type RolloutStats struct {
	ID        string
	Share     float64
	Shadow    float64
	Baseline  SideStats
	Candidate SideStats
	Shadowed  *SideStats // nil when Shadow is 0 and nothing was sampled
}

// splitState is an applied Split with its windows.
type splitState struct {
	Split
	salt                uint64
	cut, shadowCut      uint64 // Share and Shadow on the hash's scale
	base, cand, shadowW *sideWindow
}

// maxShadowInFlight bounds the shadow's cost: Predicts of sampled rows
// beyond it are skipped and counted, never queued.
const maxShadowInFlight = 2

// SetSplit applies a rollout's split (nil ends it: everything goes to the
// target). The candidate must serve the signature records are validated
// for; when TF Serving says it does not, the split is refused with the
// reason. Applying the same rollout again (the next step) keeps its
// windows, so the comparison does not restart. The target becomes the
// split's baseline.
func (p *Pool) SetSplit(s *Split) error {
	if s == nil {
		if old := p.split.Swap(nil); old != nil {
			p.event(pipeline.KindVersion, fmt.Sprintf("rollout %s ended: every record to %s", old.ID, p.Target()))
		}
		return nil
	}
	if err := s.Validate(); err != nil {
		return err
	}
	cur := p.split.Load()
	if cur == nil || cur.Candidate != s.Candidate || cur.ID != s.ID {
		if err := p.checkSignature(s.Candidate); err != nil {
			return err
		}
	}
	if p.Target() != s.Baseline {
		p.SetTarget(s.Baseline)
		if p.Target() != s.Baseline {
			return fmt.Errorf("baseline %s refused (see the worker's events)", s.Baseline)
		}
	}
	st := &splitState{Split: *s, salt: hashString(s.ID), cut: fraction(s.Share), shadowCut: fraction(s.Shadow)}
	if cur != nil && cur.ID == s.ID && cur.Candidate == s.Candidate {
		st.base, st.cand, st.shadowW = cur.base, cur.cand, cur.shadowW
		if cur.Share != s.Share || cur.Shadow != s.Shadow {
			for _, w := range []*sideWindow{st.base, st.cand, st.shadowW} {
				w.newStep()
			}
		}
	} else {
		st.base, st.cand, st.shadowW = newSideWindow(s.Baseline, len(p.outputs)), newSideWindow(s.Candidate, len(p.outputs)), newSideWindow(s.Candidate, len(p.outputs))
	}
	p.split.Store(st)
	p.event(pipeline.KindVersion, fmt.Sprintf("rollout %s: %.4g%% of records to %s, the rest to %s, shadow %.4g%%", s.ID, s.Share*100, s.Candidate, s.Baseline, s.Shadow*100))
	return nil
}

// CurrentSplit is the split applied now, nil when none.
func (p *Pool) CurrentSplit() *Split {
	st := p.split.Load()
	if st == nil {
		return nil
	}
	s := st.Split
	return &s
}

// checkSignature asks TF Serving whether t serves what records are
// validated for (a pool not started yet has nothing to compare).
func (p *Pool) checkSignature(t tfserving.Target) error {
	if !p.started.Load() || p.closed.Load() || p.schema == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	md, err := p.tfs.Metadata(ctx, p.cfg.Model, t)
	if err != nil {
		return fmt.Errorf("candidate %s %s: %w", p.cfg.Model, t, err)
	}
	if problem := p.signatureFault(md); problem != nil {
		return fmt.Errorf("candidate %s %s cannot serve these records: %w", p.cfg.Model, t, problem)
	}
	return nil
}

// fraction maps a share in [0,1] onto the hash's 64-bit scale.
func fraction(f float64) uint64 {
	switch {
	case f <= 0:
		return 0
	case f >= 1:
		return math.MaxUint64
	}
	return uint64(f * (1 << 63) * 2)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// routeHash is the record's place on the split's scale: FNV-1a of its
// key (id, source offset) from the rollout's salt, then mixed so nearby
// keys spread (splitmix64's finaliser).
func (st *splitState) routeHash(it *item) uint64 {
	const prime = 1099511628211
	h := st.salt
	add := func(b []byte) {
		for _, c := range b {
			h ^= uint64(c)
			h *= prime
		}
	}
	switch {
	case len(it.key) > 0:
		add(it.key)
	case len(it.vals.ID) > 0:
		add(it.vals.ID)
	default:
		add([]byte(it.topic))
		for _, v := range []uint64{uint64(it.partition), uint64(it.offset)} {
			for i := 0; i < 8; i++ {
				h ^= v >> (8 * i) & 0xff
				h *= prime
			}
		}
	}
	return mix(h)
}

func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// toCandidate says whether the record goes to the candidate; sampled
// whether a baseline record is also shadowed. The two use independent
// bits of the hash, so the shadow sample is a fair sample of the
// baseline's records.
func (st *splitState) route(it *item) (toCandidate, sampled bool) {
	h := st.routeHash(it)
	if st.cut > 0 && (st.cut == math.MaxUint64 || h < st.cut) {
		return true, false
	}
	return false, st.shadowCut > 0 && (st.shadowCut == math.MaxUint64 || mix(h^0x9e3779b97f4a7c15) < st.shadowCut)
}

// sideSlice is one second of a side's counters.
type sideSlice struct {
	rows, calls, errors, dlq, skipped uint64
}

// sideWindow is a side's sliding window, rotated with the latency windows.
type sideWindow struct {
	target       tfserving.Target
	version      atomic.Int64
	first        atomic.Int64 // ns of the first successful Predict
	predict, e2e *window

	mu     sync.Mutex
	slices [windowSlices]sideSlice
	cur    int
	// The step's output values and shadow differences (newStep resets).
	outs []pipeline.Dist
	diff []Diff
}

func newSideWindow(t tfserving.Target, outputs int) *sideWindow {
	return &sideWindow{target: t, predict: newWindow(), e2e: newWindow(), outs: make([]pipeline.Dist, outputs), diff: make([]Diff, outputs)}
}

// newStep forgets the previous step's output values.
func (w *sideWindow) newStep() {
	w.mu.Lock()
	for i := range w.outs {
		w.outs[i], w.diff[i] = pipeline.Dist{}, Diff{}
	}
	w.mu.Unlock()
}

func (w *sideWindow) rotate() {
	w.predict.rotate()
	w.e2e.rotate()
	w.mu.Lock()
	w.cur = (w.cur + 1) % len(w.slices)
	s := &w.slices[w.cur]
	s.rows, s.calls, s.errors, s.dlq, s.skipped = 0, 0, 0, 0, 0
	w.mu.Unlock()
}

func (w *sideWindow) count(f func(s *sideSlice)) {
	w.mu.Lock()
	f(&w.slices[w.cur])
	w.mu.Unlock()
}

// record counts into the current slice and the step's values at once.
func (w *sideWindow) record(f func(s *sideSlice, outs []pipeline.Dist, diff []Diff)) {
	w.mu.Lock()
	f(&w.slices[w.cur], w.outs, w.diff)
	w.mu.Unlock()
}

func (w *sideWindow) stats(outputs []string) SideStats {
	st := SideStats{Target: w.target.String(), Version: w.version.Load(), First: time.Duration(w.first.Load()), Predict: w.predict.summary(), EndToEnd: w.e2e.summary()}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.slices {
		s := &w.slices[i]
		st.Rows += s.rows
		st.Calls += s.calls
		st.Errors += s.errors
		st.DLQ += s.dlq
		st.Skipped += s.skipped
	}
	for j, d := range w.outs {
		if d.N == 0 && d.NonFinite == 0 {
			continue
		}
		if st.Outputs == nil {
			st.Outputs = map[string]pipeline.Dist{}
		}
		st.Outputs[outputs[j]] = d.Clone()
	}
	for j, d := range w.diff {
		if d.N == 0 {
			continue
		}
		if st.Diff == nil {
			st.Diff = map[string]Diff{}
		}
		st.Diff[outputs[j]] = d
	}
	return st
}

// rolloutStats is the pool's rollout for Stats, nil when none.
func (p *Pool) rolloutStats() *RolloutStats {
	st := p.split.Load()
	if st == nil {
		return nil
	}
	r := &RolloutStats{ID: st.ID, Share: st.Share, Shadow: st.Shadow, Baseline: st.base.stats(p.outputs), Candidate: st.cand.stats(p.outputs)}
	if sh := st.shadowW.stats(p.outputs); st.Shadow > 0 || sh.Rows+sh.Calls+sh.Skipped > 0 {
		r.Shadowed = &sh
	}
	return r
}

func (p *Pool) rotateSplit() {
	if st := p.split.Load(); st != nil {
		st.base.rotate()
		st.cand.rotate()
		st.shadowW.rotate()
	}
}

// splitAndSend serves a batch under a rollout: the candidate's rows and the
// baseline's are two Predicts, each to its target, and a sample of the
// baseline's rows is shadowed.
func (p *Pool) splitAndSend(m *member, st *splitState, rows []*item) {
	var base, cand, sampled []*item
	for _, it := range rows {
		c, s := st.route(it)
		if c {
			it.side = st.cand
			cand = append(cand, it)
			continue
		}
		it.side = st.base
		base = append(base, it)
		if s {
			sampled = append(sampled, it)
		}
	}
	if len(cand) > 0 {
		p.predictRows(m, cand, st.Candidate, st.cand, nil)
	}
	if len(base) > 0 {
		var sh *shadowJob
		if len(sampled) > 0 {
			sh = &shadowJob{st: st, rows: sampled}
		}
		p.predictRows(m, base, st.Baseline, st.base, sh)
	}
}

// shadowJob is the sampled rows of a baseline batch.
type shadowJob struct {
	st   *splitState
	rows []*item
}

// recordSide counts a successful Predict of rows on their side: rows,
// version, latency, and every numeric output's values.
func (p *Pool) recordSide(w *sideWindow, res predictResult, rows int) {
	w.version.Store(res.version)
	w.first.CompareAndSwap(0, int64(max(res.latency, 1)))
	w.predict.recordN(res.latency, rows)
	w.record(func(s *sideSlice, outs []pipeline.Dist, _ []Diff) {
		s.rows += uint64(rows)
		for i, t := range res.tensors {
			if t == nil || i >= len(outs) {
				continue
			}
			eachNumber(t, func(x float64) { outs[i].Add(x) })
		}
	})
}

// eachNumber calls f with every element of a numeric tensor (strings and
// complex numbers have no distribution to compare).
func eachNumber(t *tensor.Tensor, f func(float64)) {
	switch {
	case t.Float32 != nil:
		for _, x := range t.Float32 {
			f(float64(x))
		}
	case t.Float64 != nil:
		for _, x := range t.Float64 {
			f(x)
		}
	case t.Int64 != nil:
		for _, x := range t.Int64 {
			f(float64(x))
		}
	case t.Uint64 != nil:
		for _, x := range t.Uint64 {
			f(float64(x))
		}
	case t.Bool != nil:
		for _, x := range t.Bool {
			if x {
				f(1)
			} else {
				f(0)
			}
		}
	}
}

// numbersOfRows is the numeric elements of the given rows of t, row by row.
func numbersOfRows(t *tensor.Tensor, rows []int) []float64 {
	if t == nil || len(t.Shape) == 0 || t.Shape[0] == 0 {
		return nil
	}
	var all []float64
	eachNumber(t, func(x float64) { all = append(all, x) })
	inner := len(all) / int(t.Shape[0])
	out := make([]float64, 0, inner*len(rows))
	for _, r := range rows {
		out = append(out, all[r*inner:(r+1)*inner]...)
	}
	return out
}

// shadow sends the sampled rows of a baseline batch to the candidate in
// the background, within the shadow budget, and compares its outputs with
// the baseline's (res, for the whole batch of which rows are a part).
func (p *Pool) shadow(job *shadowJob, batchRows []*item, res predictResult) {
	w := job.st.shadowW
	select {
	case p.shadowSem <- struct{}{}:
	default:
		w.count(func(s *sideSlice) { s.skipped += uint64(len(job.rows)) })
		return
	}
	// The baseline's values for the sampled rows, and the rows' inputs,
	// copied now: the records are recycled once their results are acked.
	idx := make([]int, 0, len(job.rows))
	j := 0
	for i, it := range batchRows {
		if j < len(job.rows) && it == job.rows[j] {
			idx = append(idx, i)
			j++
		}
	}
	base := make([][]float64, len(res.tensors))
	for i, t := range res.tensors {
		base[i] = numbersOfRows(t, idx)
	}
	b := p.gather(job.rows)
	in := make(map[string]*tensor.Tensor, len(b.inputs))
	for name, t := range b.inputs {
		in[name] = copyTensor(t)
	}
	p.batches.Put(b)
	n := len(job.rows)
	p.shadowWG.Add(1)
	go func() {
		defer p.shadowWG.Done()
		defer func() { <-p.shadowSem }()
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.PredictTimeout)
		start := time.Now()
		cres, err := p.predictOnce(ctx, job.st.Candidate, n, in)
		lat := time.Since(start)
		cancel()
		w.count(func(s *sideSlice) { s.calls++ })
		if err != nil {
			if p.ctx.Err() == nil {
				w.count(func(s *sideSlice) { s.errors++ })
			}
			return
		}
		w.version.Store(cres.version)
		w.first.CompareAndSwap(0, int64(max(lat, 1)))
		w.predict.recordN(lat, n)
		w.record(func(s *sideSlice, outs []pipeline.Dist, diff []Diff) {
			s.rows += uint64(n)
			for i, t := range cres.tensors {
				if t == nil || i >= len(base) || i >= len(outs) {
					continue
				}
				k := 0
				eachNumber(t, func(x float64) {
					outs[i].Add(x)
					if k < len(base[i]) {
						d := math.Abs(x - base[i][k])
						if !math.IsNaN(d) {
							diff[i].N++
							diff[i].Sum += d
							diff[i].Max = max(diff[i].Max, d)
						}
					}
					k++
				})
			}
		})
	}()
}

// copyTensor is a deep copy of a batch tensor (pooled buffers, strings
// that alias records).
func copyTensor(t *tensor.Tensor) *tensor.Tensor {
	c := &tensor.Tensor{DType: t.DType, Shape: append([]int64(nil), t.Shape...)}
	switch {
	case t.Float32 != nil:
		c.Float32 = append([]float32(nil), t.Float32...)
	case t.Float64 != nil:
		c.Float64 = append([]float64(nil), t.Float64...)
	case t.Int64 != nil:
		c.Int64 = append([]int64(nil), t.Int64...)
	case t.Uint64 != nil:
		c.Uint64 = append([]uint64(nil), t.Uint64...)
	case t.Bool != nil:
		c.Bool = append([]bool(nil), t.Bool...)
	case t.Strings != nil || t.DType == tfpb.DataType_DT_STRING:
		c.Strings = make([][]byte, len(t.Strings))
		for i, s := range t.Strings {
			c.Strings[i] = append([]byte(nil), s...)
		}
	}
	return c
}
