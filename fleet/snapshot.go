package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
)

// SnapshotSchema is the snapshot format this inferops writes. A newer
// writer adds fields, which older readers ignore; a field's meaning never
// changes within the topic.
const SnapshotSchema = 1

// MaxRecordBytes bounds what a reader decodes from the fleet and control
// topics: a snapshot of 64 members with per-version histograms is ~20 KB.
const MaxRecordBytes = 1 << 20

// Control modes an instance reports.
const (
	ModeFollow = "follow" // applies its group's desired state
	ModePinned = "pinned" // --control=ignore: runs on its own flags
)

// Snapshot is what one worker pool publishes about itself once an
// interval, under its instance name. It holds no secret and no
// configuration dump: names, counters, rates and latency histograms only
// (TestSnapshotHasNoSecret plants a password and looks for it).
type Snapshot struct {
	Schema   int    `json:"schema"`
	Instance string `json:"instance"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	// PIDSpace identifies the host's boot and pid namespace: a reader with
	// the same value can ask the kernel whether PID still runs (the
	// instance-name check of a restart after a crash). Empty when unknown.
	PIDSpace   string    `json:"pid_space,omitempty"`
	Inferops   string    `json:"inferops"` // inferops version
	Started    time.Time `json:"started"`
	Time       time.Time `json:"time"`
	IntervalMs int64     `json:"interval_ms"`

	Group  string `json:"group"`
	Input  string `json:"input"`
	Output string `json:"output"`
	DLQ    string `json:"dlq"`
	Model  string `json:"model"`
	Target string `json:"target"` // what the next batch asks for: latest, 2, label:stable

	Control Control `json:"control"`

	Workers    int      `json:"workers"`
	Partitions int      `json:"partitions"` // of the input topic
	Members    []Member `json:"members,omitempty"`
	InRate     float64  `json:"in_rate"`  // records/s read
	OutRate    float64  `json:"out_rate"` // results and dead letters/s acked
	AvgBatch   float64  `json:"avg_batch"`
	Consumed   uint64   `json:"consumed"` // totals since the process started
	Produced   uint64   `json:"produced"`
	DLQTotal   uint64   `json:"dlq_total"`
	// DLQReasons counts dead letters by pipeline reason (pipeline.Reason*);
	// Errors the rest by kind (predict, produce, consume).
	DLQReasons map[string]uint64 `json:"dlq_reasons,omitempty"`
	Errors     map[string]uint64 `json:"errors,omitempty"`
	Retries    uint64            `json:"retries"`
	Duplicates uint64            `json:"duplicates"`
	Lag        int64             `json:"lag"` // over the partitions this instance owns
	Breaker    string            `json:"breaker"`
	Paused     bool              `json:"paused"`

	// The last 10 s of Predict and end-to-end latency, overall and for each
	// version that served rows in that window.
	Predict  Hist         `json:"predict"`
	EndToEnd Hist         `json:"e2e"`
	Versions []VersionRow `json:"versions,omitempty"`

	// TFServing is this instance's client view of each TF Serving host it
	// calls (--tfserving with several hosts or a dns:/// name).
	TFServing []TFHost `json:"tfserving_hosts,omitempty"`

	// Rollout is this instance's part of the group's rollout: both sides'
	// windows, nil when it applies none.
	Rollout *RolloutSnap `json:"rollout,omitempty"`
}

// TFHost is one TF Serving host as an instance's client sees it.
type TFHost struct {
	Addr      string  `json:"addr"`
	State     string  `json:"state"` // tfserving.HostUp, HostDown, HostEjected
	Reason    string  `json:"reason,omitempty"`
	Calls     int64   `json:"calls"` // Predict attempts since the process started
	Errors    int64   `json:"errors"`
	Share     float64 `json:"share"` // of this instance's Predicts, latest window
	Rate      float64 `json:"rate"`  // attempts/s
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Available []int64 `json:"available,omitempty"` // versions it reports AVAILABLE
}

// Control is how an instance follows its group's desired state.
type Control struct {
	Mode string `json:"mode"` // ModeFollow or ModePinned
	// Seq and Offset are the desired state last applied (its sequence
	// number and its offset on the control topic); 0 and -1 before any.
	Seq    uint64 `json:"seq"`
	Offset int64  `json:"offset"`
	// Share is the workers the desired state gives this instance, -1 when
	// it sets no total (the instance keeps its own --workers).
	Share int `json:"share"`
	// Note qualifies a desired state that is in effect (its total clamped
	// to the partitions); Error says what of it could not be applied (a
	// target the model refuses, a newer schema).
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// Member is one consumer-group member of an instance.
type Member struct {
	ClientID   string  `json:"client_id"` // inferops-<instance>-w<N>
	MemberID   string  `json:"member_id,omitempty"`
	Partitions []int32 `json:"partitions"`
	InRate     float64 `json:"in_rate"`
	OutRate    float64 `json:"out_rate"`
	InFlight   int     `json:"in_flight"`
	AvgBatch   float64 `json:"avg_batch"`
}

// VersionRow is what one model version served on an instance.
type VersionRow struct {
	Version int64  `json:"version"`
	Rows    uint64 `json:"rows"` // since the process started
	// All says this version served every row of the window: its latency
	// is the instance's, sent once (Predict and EndToEnd stay empty here).
	All      bool `json:"all,omitempty"`
	Predict  Hist `json:"predict"`
	EndToEnd Hist `json:"e2e"`
}

// Serving reports whether the version served rows in the window.
func (v VersionRow) Serving() bool { return v.All || v.Predict.Count() > 0 || v.EndToEnd.Count() > 0 }

// Latency is the version's Predict and end-to-end latency on s.
func (v VersionRow) Latency(s *Snapshot) (predict, e2e Hist) {
	if v.All {
		return s.Predict, s.EndToEnd
	}
	return v.Predict, v.EndToEnd
}

// Identity is the process a snapshot comes from.
type Identity struct {
	Instance string
	Host     string
	PID      int
	PIDSpace string
	Started  time.Time
	Version  string // inferops version
}

// SameProcess reports whether two identities are one process.
func (a Identity) SameProcess(b Identity) bool {
	return a.Host == b.Host && a.PID == b.PID && a.Started.Equal(b.Started)
}

// Identity is who wrote s.
func (s *Snapshot) Identity() Identity {
	return Identity{Instance: s.Instance, Host: s.Host, PID: s.PID, PIDSpace: s.PIDSpace, Started: s.Started, Version: s.Inferops}
}

// Interval is how often the instance publishes (the default when absent).
func (s *Snapshot) Interval() time.Duration {
	if s.IntervalMs <= 0 {
		return pipeline.DefaultFleetInterval
	}
	return time.Duration(s.IntervalMs) * time.Millisecond
}

// NewSnapshot builds an instance's snapshot from its pool's stats. Every
// free-text field passes through config.Scrub, so a password that leaked
// into an error message never leaves the process.
func NewSnapshot(id Identity, interval time.Duration, cfg worker.Config, partitions int, st worker.Stats, hosts []tfserving.HostSnapshot, ctl Control) *Snapshot {
	s := &Snapshot{
		Schema: SnapshotSchema, Instance: id.Instance, Host: id.Host, PID: id.PID, PIDSpace: id.PIDSpace,
		Inferops: id.Version, Started: id.Started.UTC(), Time: st.Time.UTC(), IntervalMs: interval.Milliseconds(),
		Group: cfg.Group, Input: cfg.Input, Output: cfg.Output, DLQ: cfg.DLQ, Model: cfg.Model, Target: st.Target,
		Control: ctl, Workers: st.Workers, Partitions: partitions,
		AvgBatch: st.AvgBatch, Consumed: st.Consumed, Produced: st.Produced, DLQTotal: st.DLQ,
		Retries: st.Retries, Duplicates: st.Duplicates, Lag: st.Lag, Breaker: st.Breaker, Paused: st.Paused,
		Predict: HistOf(st.Predict.Hist), EndToEnd: HistOf(st.EndToEnd.Hist),
		Rollout: rolloutSnapOf(st.Rollout),
	}
	s.Control.Note, s.Control.Error = config.Scrub(s.Control.Note), config.Scrub(s.Control.Error)
	for k, v := range st.Errors {
		m := &s.Errors
		if pipeline.IsReason(k) {
			m = &s.DLQReasons
		}
		if *m == nil {
			*m = map[string]uint64{}
		}
		(*m)[k] = v
	}
	for _, m := range st.Members {
		s.InRate += m.InRate
		s.OutRate += m.OutRate
		s.Members = append(s.Members, Member{ClientID: m.ClientID, MemberID: m.ID, Partitions: m.Partitions,
			InRate: round1(m.InRate), OutRate: round1(m.OutRate), InFlight: m.InFlight, AvgBatch: round1(m.AvgBatch)})
	}
	s.InRate, s.OutRate, s.AvgBatch = round1(s.InRate), round1(s.OutRate), round1(s.AvgBatch)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, h := range hosts {
		s.TFServing = append(s.TFServing, TFHost{Addr: h.Addr, State: h.State, Reason: config.Scrub(h.Reason), Calls: h.Calls, Errors: h.Errors,
			Share: h.Share, Rate: h.Rate, P50ms: ms(h.P50), P99ms: ms(h.P99), Available: h.Available()})
	}
	serving := 0
	for _, vs := range st.Versions {
		if vs.Predict.Count > 0 || vs.EndToEnd.Count > 0 {
			serving++
		}
	}
	for _, v := range slices.Sorted(maps.Keys(st.Versions)) {
		vs := st.Versions[v]
		row := VersionRow{Version: v, Rows: vs.Count, Predict: HistOf(vs.Predict.Hist), EndToEnd: HistOf(vs.EndToEnd.Hist)}
		// The common case, one version serving: its windows are the
		// instance's (same samples, same rotation), so they go once.
		if serving == 1 && row.Predict.Count() == s.Predict.Count() && row.EndToEnd.Count() == s.EndToEnd.Count() && row.Predict.Count()+row.EndToEnd.Count() > 0 {
			row.All, row.Predict, row.EndToEnd = true, Hist{}, Hist{}
		}
		s.Versions = append(s.Versions, row)
	}
	return s
}

// round1 keeps one decimal: "407.99975479214737" is 15 bytes of noise in
// every rate of every snapshot, against a 2 KB/s budget.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// DecodeSnapshot reads a snapshot record's value. It refuses what is not
// a snapshot of a worker (no schema, a bad instance name) so one corrupt
// record cannot masquerade as an instance; unknown fields are ignored.
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("snapshot of %d bytes is over the %d limit", len(b), MaxRecordBytes)
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if s.Schema < 1 {
		return nil, errors.New("snapshot has no schema version")
	}
	if err := worker.ValidInstance(s.Instance); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if s.Time.IsZero() {
		return nil, fmt.Errorf("snapshot of %s has no time", s.Instance)
	}
	if s.IntervalMs < 0 || s.IntervalMs > int64(time.Hour/time.Millisecond) {
		return nil, fmt.Errorf("snapshot of %s: interval %d ms out of range", s.Instance, s.IntervalMs)
	}
	return &s, nil
}
