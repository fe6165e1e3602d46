// Package report writes the triage report: the state of the pipeline at one
// moment as Markdown for an incident ticket, with a JSON twin for tools.
// `inferops status --report FILE` and the console's export key build an
// Input from what they already hold (the Kafka snapshot, the worker stats,
// the model status, advice) and call Write. Every string that reaches the
// report passes through the secret redaction of internal/config, and DLQ
// record payloads are left out (they may carry user data).
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/rollout"
)

// Input is what the caller knows at the moment of the report. Nil and empty
// fields mean "not known" and their section is left out.
type Input struct {
	Time    time.Time // default: now
	Version string    // inferops version
	Host    string    // default: os.Hostname
	Source  string    // what produced it, e.g. "inferops status --report"

	Kafka *cluster.Snapshot

	TFServingAddr string
	Model         string
	ModelStandIn  bool // the server marks the model as a stand-in (made-up outputs)
	ModelVersions []tfserving.VersionStatus
	ModelLatency  map[int64]tfserving.LatencySnapshot // by version
	// Fleet is the client's view of every TF Serving host; nil: not known.
	Fleet *tfserving.Fleet

	Worker *worker.Stats
	// WorkerFleet is every worker pool of the group as the fleet topic
	// tells it (package fleet); nil: not known.
	WorkerFleet *fleet.Status
	// Rollout is the group's rollout (package rollout); nil: none, or not
	// known.
	Rollout *rollout.Status
	Events  []pipeline.Event      // oldest first; the newest MaxEvents are kept
	DLQ     []pipeline.DeadLetter // oldest first; payloads are never copied

	Advice []doctor.Advice
	Config []Setting
	// Errors are the parts that could not be read ("Kafka: ..."); a report
	// of a broken pipeline is still a report.
	Errors []string
	// Secrets are values to cut out besides those registered with
	// config.RegisterSecret (which parseFlags does for every password).
	Secrets []string

	MaxEvents int // default 50
	MaxDLQ    int // default 20
}

// Setting is one effective configuration value and where it came from.
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"` // flag, env, file, default
}

// Report is the JSON twin; the Markdown is rendered from it, so both always
// say the same thing.
type Report struct {
	GeneratedAt time.Time       `json:"generated_at"`
	Inferops    string          `json:"inferops_version,omitempty"`
	Host        string          `json:"host,omitempty"`
	Source      string          `json:"source,omitempty"`
	Summary     []string        `json:"summary"`
	Kafka       *Kafka          `json:"kafka,omitempty"`
	Model       *Model          `json:"model,omitempty"`
	Workers     *Workers        `json:"workers,omitempty"`
	Fleet       *fleet.Status   `json:"fleet,omitempty"`
	Rollout     *rollout.Status `json:"rollout,omitempty"`
	Advice      []doctor.Advice `json:"advice,omitempty"`
	Events      []Event         `json:"events,omitempty"`
	DLQ         []DLQ           `json:"dlq,omitempty"`
	Config      []Setting       `json:"config,omitempty"`
	Errors      []string        `json:"errors,omitempty"`
}

// Kafka is the lag table and the group.
type Kafka struct {
	Time            time.Time              `json:"time"`
	Topic           string                 `json:"topic"`
	Group           string                 `json:"group"`
	GroupState      string                 `json:"group_state"`
	Status          cluster.Status         `json:"status"`
	TotalLag        int64                  `json:"total_lag"`
	MaxLag          int64                  `json:"max_lag"`
	MaxLagPartition int32                  `json:"max_lag_partition"`
	Brokers         int                    `json:"brokers"`
	Partitions      []cluster.PartitionLag `json:"partitions"`
	Members         []cluster.Member       `json:"members"`
	// As in the snapshot: TotalLag counts the backlog of partitions
	// without a commit, CommittedLag does not.
	CommittedLag int64               `json:"committed_lag"`
	ResetPolicy  cluster.ResetPolicy `json:"reset_policy,omitempty"`
	Rebalance    *cluster.Rebalance  `json:"rebalance,omitempty"`
	Warnings     []cluster.Warning   `json:"warnings,omitempty"`
}

// Model is the served model's versions.
type Model struct {
	Name     string         `json:"name"`
	Address  string         `json:"address,omitempty"`
	StandIn  bool           `json:"stand_in,omitempty"` // made up from a real model's signature: its outputs are not the model's
	Versions []ModelVersion `json:"versions"`
	// Hosts are the TF Serving hosts behind the address (several: a fleet)
	// and Skew how they disagree (tfserving.FindSkew's messages).
	Hosts []Host   `json:"hosts,omitempty"`
	Skew  []string `json:"skew,omitempty"`
}

// Host is one TF Serving host as the client sees it; `inferops status
// --json` prints the same rows.
type Host struct {
	Address   string           `json:"address"`
	State     string           `json:"state"`
	Reason    string           `json:"reason,omitempty"`
	Available []int64          `json:"available_versions"`
	Labels    map[string]int64 `json:"labels,omitempty"`
	Calls     int64            `json:"calls"`
	Errors    int64            `json:"errors"`
	SharePct  float64          `json:"share_pct"`
	P50ms     float64          `json:"p50_ms"`
	P99ms     float64          `json:"p99_ms"`
}

// HostsOf is the report's rows for a fleet snapshot.
func HostsOf(fl tfserving.Fleet) []Host {
	out := make([]Host, 0, len(fl.Hosts))
	for _, h := range fl.Hosts {
		avail := h.Available()
		if avail == nil {
			avail = []int64{}
		}
		out = append(out, Host{Address: h.Addr, State: h.State, Reason: h.Reason, Available: avail, Labels: h.Labels,
			Calls: h.Calls, Errors: h.Errors, SharePct: math.Round(1000*h.Share) / 10, P50ms: ms(h.P50), P99ms: ms(h.P99)})
	}
	return out
}

// SkewOf is the fleet's skew, one message each.
func SkewOf(fl tfserving.Fleet) []string {
	var out []string
	for _, s := range fl.Skew {
		out = append(out, s.Message)
	}
	return out
}

// ModelVersion is one version's state and the Predict latency it served.
type ModelVersion struct {
	Version  int64   `json:"version"`
	State    string  `json:"state"`
	Error    string  `json:"error,omitempty"`
	Requests int64   `json:"requests,omitempty"`
	P50ms    float64 `json:"p50_ms,omitempty"`
	P99ms    float64 `json:"p99_ms,omitempty"`
	MaxMs    float64 `json:"max_ms,omitempty"`
}

// Workers is the inference pool.
type Workers struct {
	Workers    int               `json:"workers"`
	Target     string            `json:"target,omitempty"`
	Breaker    string            `json:"breaker,omitempty"`
	Paused     bool              `json:"paused"`
	QPS        float64           `json:"qps"`
	AvgBatch   float64           `json:"avg_batch"`
	Consumed   uint64            `json:"consumed"`
	Produced   uint64            `json:"produced"`
	DLQ        uint64            `json:"dlq"`
	Retries    uint64            `json:"retries"`
	Duplicates uint64            `json:"duplicates"`
	Lag        int64             `json:"lag"`
	Errors     map[string]uint64 `json:"errors,omitempty"`
	Predict    Latency           `json:"predict_latency"`
	EndToEnd   Latency           `json:"end_to_end_latency"`
	Members    []WorkerMember    `json:"members,omitempty"`
}

// Latency is a summary in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// WorkerMember is one consumer of the pool.
type WorkerMember struct {
	ClientID   string  `json:"client_id"`
	Partitions []int32 `json:"partitions"`
	InRate     float64 `json:"in_rate"`
	OutRate    float64 `json:"out_rate"`
	AvgBatch   float64 `json:"avg_batch"`
	InFlight   int     `json:"in_flight"`
}

// Event is one line of the console's event log.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// DLQ is one dead-lettered record, without its payload.
type DLQ struct {
	Time      time.Time `json:"time"`
	Reason    string    `json:"reason"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
}

// Build turns the input into the report, redacting as it copies.
func Build(in Input) Report {
	red := redactor(in.Secrets)
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	if in.Host == "" {
		in.Host, _ = os.Hostname()
	}
	if in.MaxEvents <= 0 {
		in.MaxEvents = 50
	}
	if in.MaxDLQ <= 0 {
		in.MaxDLQ = 20
	}
	r := Report{GeneratedAt: in.Time.UTC(), Inferops: red(in.Version), Host: red(in.Host), Source: red(in.Source)}
	if s := in.Kafka; s != nil {
		k := &Kafka{Time: s.Time.UTC(), Topic: red(s.Topic), Group: red(s.Group), GroupState: red(s.GroupState), Status: s.Status,
			TotalLag: s.TotalLag, MaxLag: s.MaxLag, MaxLagPartition: s.MaxLagPartition, Brokers: s.Brokers,
			CommittedLag: s.CommittedLag, ResetPolicy: s.ResetPolicy}
		for _, w := range s.Warnings {
			k.Warnings = append(k.Warnings, cluster.Warning{Code: w.Code, Message: red(w.Message)})
		}
		if rb := s.Rebalance; rb != nil {
			c := *rb
			c.State, c.Awaited = red(rb.State), nil
			for _, m := range rb.Awaited {
				m.MemberID, m.ClientID, m.Host = red(m.MemberID), red(m.ClientID), red(m.Host)
				m.Partitions = append([]int32(nil), m.Partitions...)
				c.Awaited = append(c.Awaited, m)
			}
			k.Rebalance = &c
		}
		for _, p := range s.Partitions {
			p.Member = red(p.Member)
			k.Partitions = append(k.Partitions, p)
		}
		for _, m := range s.Members {
			m.MemberID, m.ClientID, m.Host = red(m.MemberID), red(m.ClientID), red(m.Host)
			m.Partitions = append([]int32(nil), m.Partitions...)
			k.Members = append(k.Members, m)
		}
		r.Kafka = k
	}
	if in.Model != "" || len(in.ModelVersions) > 0 {
		m := &Model{Name: red(in.Model), Address: red(in.TFServingAddr), StandIn: in.ModelStandIn, Versions: []ModelVersion{}}
		for _, v := range in.ModelVersions {
			mv := ModelVersion{Version: v.Version, State: red(v.State)}
			if v.ErrorCode != "" && v.ErrorCode != "OK" {
				mv.Error = red(strings.TrimSpace(v.ErrorCode + " " + v.ErrorMessage))
			}
			if l, ok := in.ModelLatency[v.Version]; ok {
				mv.Requests, mv.P50ms, mv.P99ms, mv.MaxMs = l.Count, ms(l.P50), ms(l.P99), ms(l.Max)
			}
			m.Versions = append(m.Versions, mv)
		}
		if fl := in.Fleet; fl != nil {
			for _, h := range HostsOf(*fl) {
				h.Address, h.State, h.Reason = red(h.Address), red(h.State), red(h.Reason)
				m.Hosts = append(m.Hosts, h)
			}
			for _, s := range SkewOf(*fl) {
				m.Skew = append(m.Skew, red(s))
			}
		}
		r.Model = m
	}
	if st := in.Worker; st != nil {
		w := &Workers{Workers: st.Workers, Target: red(st.Target), Breaker: red(st.Breaker), Paused: st.Paused, QPS: st.QPS,
			AvgBatch: st.AvgBatch, Consumed: st.Consumed, Produced: st.Produced, DLQ: st.DLQ, Retries: st.Retries,
			Duplicates: st.Duplicates, Lag: st.Lag, Predict: latency(st.Predict), EndToEnd: latency(st.EndToEnd)}
		if len(st.Errors) > 0 {
			w.Errors = map[string]uint64{}
			for k, v := range st.Errors {
				w.Errors[red(k)] = v
			}
		}
		for _, m := range st.Members {
			w.Members = append(w.Members, WorkerMember{ClientID: red(m.ClientID), Partitions: append([]int32(nil), m.Partitions...),
				InRate: m.InRate, OutRate: m.OutRate, AvgBatch: m.AvgBatch, InFlight: m.InFlight})
		}
		r.Workers = w
	}
	if f := in.WorkerFleet; f != nil {
		r.Fleet = redactFleet(*f, red)
	}
	if ro := in.Rollout; ro != nil && ro.Rollout != nil {
		r.Rollout = redactRollout(*ro, red)
	}
	for _, a := range in.Advice {
		a.Rule, a.Title, a.Evidence, a.Fix = red(a.Rule), red(a.Title), red(a.Evidence), red(a.Fix)
		r.Advice = append(r.Advice, a)
	}
	for _, e := range tail(in.Events, in.MaxEvents) {
		r.Events = append(r.Events, Event{Time: e.Time.UTC(), Kind: red(e.Kind), Message: red(e.Message)})
	}
	for _, d := range tail(in.DLQ, in.MaxDLQ) {
		r.DLQ = append(r.DLQ, DLQ{Time: d.Time.UTC(), Reason: red(d.Reason), Topic: red(d.Topic), Partition: d.Partition, Offset: d.Offset})
	}
	for _, s := range in.Config {
		v := red(s.Value)
		if config.IsSensitiveKey(s.Key) && v != "" {
			v = config.Redacted
		}
		r.Config = append(r.Config, Setting{Key: red(s.Key), Value: v, Source: red(s.Source)})
	}
	for _, e := range in.Errors {
		r.Errors = append(r.Errors, red(e))
	}
	r.Summary = summarize(r)
	return r
}

func tail[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latency(l worker.LatencySummary) Latency {
	return Latency{Count: l.Count, P50ms: ms(l.P50), P95ms: ms(l.P95), P99ms: ms(l.P99), MaxMs: ms(l.Max)}
}

// redactRollout copies a rollout status with every free-text field
// redacted.
func redactRollout(s rollout.Status, red func(string) string) *rollout.Status {
	s.Summary, s.Advice, s.Driver = red(s.Summary), red(s.Advice), red(s.Driver)
	if s.Rollout != nil {
		r := *s.Rollout
		r.Driver, r.Reason = red(r.Driver), red(r.Reason)
		s.Rollout = &r
	}
	gates := make([]rollout.Gate, 0, len(s.Gates))
	for _, g := range s.Gates {
		g.Value, g.Limit, g.Detail = red(g.Value), red(g.Limit), red(g.Detail)
		gates = append(gates, g)
	}
	s.Gates = gates
	if s.Driving != nil {
		d := *s.Driving
		d.Message, d.Gates = red(d.Message), nil // the gates are above
		s.Driving = &d
	}
	s.Instances = redactAll(s.Instances, red)
	s.Pending = redactAll(s.Pending, red)
	return &s
}

func redactAll(ss []string, red func(string) string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, v := range ss {
		out[i] = red(v)
	}
	return out
}

// redactFleet copies a fleet status with every free-text field redacted.
func redactFleet(f fleet.Status, red func(string) string) *fleet.Status {
	if f.Desired != nil {
		d := *f.Desired
		d.By, d.Change = red(d.By), red(d.Change)
		f.Desired = &d
	}
	f.Asks = red(f.Asks)
	insts := make([]fleet.InstanceStatus, 0, len(f.Instances))
	for _, i := range f.Instances {
		i.Instance, i.Host, i.Target = red(i.Instance), red(i.Host), red(i.Target)
		i.Control.Note, i.Control.Error = red(i.Control.Note), red(i.Control.Error)
		members := make([]fleet.Member, 0, len(i.Members))
		for _, m := range i.Members {
			m.ClientID, m.MemberID = red(m.ClientID), red(m.MemberID)
			members = append(members, m)
		}
		i.Members = members
		hosts := make([]fleet.TFHost, 0, len(i.TFServing))
		for _, h := range i.TFServing {
			h.Addr, h.Reason = red(h.Addr), red(h.Reason)
			hosts = append(hosts, h)
		}
		i.TFServing = hosts
		insts = append(insts, i)
	}
	f.Instances = insts
	evs := make([]pipeline.Event, 0, len(f.Events))
	for _, e := range f.Events {
		e.Message = red(e.Message)
		evs = append(evs, e)
	}
	f.Events = evs
	return &f
}

// redactor removes the given secrets and every registered one.
func redactor(secrets []string) func(string) string {
	return func(s string) string { return config.Redact(s, secrets...) }
}

// summarize is the few lines an incident channel reads first.
func summarize(r Report) []string {
	var out []string
	if k := r.Kafka; k != nil {
		line := fmt.Sprintf("Kafka: group %s on %s is %s (%s, %d members); total lag %s", k.Group, k.Topic, k.Status, k.GroupState, len(k.Members), count(k.TotalLag))
		if k.MaxLag > 0 {
			line += fmt.Sprintf(", worst partition %d with %s", k.MaxLagPartition, count(k.MaxLag))
			for _, p := range k.Partitions {
				if p.Partition == k.MaxLagPartition && p.LagSeconds >= 0 {
					line += fmt.Sprintf(" (%s behind)", seconds(p.LagSeconds))
				}
			}
		}
		out = append(out, line)
		// What the operator must not miss, one line each (a group with
		// nothing consuming, a stuck rebalance, a typo in --group).
		for _, w := range k.Warnings {
			out = append(out, "Kafka warning: "+w.Message)
		}
	}
	if m := r.Model; m != nil {
		var vs []string
		for _, v := range m.Versions {
			s := fmt.Sprintf("v%d %s", v.Version, v.State)
			if v.P99ms > 0 {
				s += fmt.Sprintf(" (p99 %s ms)", num(v.P99ms))
			}
			if v.Error != "" {
				s += " error: " + v.Error
			}
			vs = append(vs, s)
		}
		if len(vs) == 0 {
			vs = []string{"no versions reported"}
		}
		standIn := ""
		if m.StandIn {
			standIn = " (a stand-in: its outputs are made up)"
		}
		out = append(out, fmt.Sprintf("Model %s%s: %s", m.Name, standIn, strings.Join(vs, "; ")))
		if len(m.Hosts) > 1 {
			up := 0
			for _, h := range m.Hosts {
				if h.State == tfserving.HostUp {
					up++
				}
			}
			line := fmt.Sprintf("TF Serving: %d of %d hosts in rotation", up, len(m.Hosts))
			if len(m.Skew) > 0 {
				line += "; VERSION SKEW: " + strings.Join(m.Skew, "; ")
			}
			out = append(out, line)
		}
	}
	if w := r.Workers; w != nil {
		line := fmt.Sprintf("Workers: %d, %s rec/s, avg batch %s, Predict p99 %s ms, end-to-end p99 %s ms, DLQ %s",
			w.Workers, num(w.QPS), num(w.AvgBatch), num(w.Predict.P99ms), num(w.EndToEnd.P99ms), count(int64(w.DLQ)))
		if w.Breaker != "" {
			line += ", breaker " + w.Breaker
		}
		if w.Paused {
			line += ", PAUSED"
		}
		out = append(out, line)
	}
	if f := r.Fleet; f != nil {
		t := f.Totals
		line := fmt.Sprintf("Fleet: %d live instance(s)", t.Live)
		if t.Lost > 0 {
			line += fmt.Sprintf(", %d LOST", t.Lost)
		}
		line += fmt.Sprintf(", %d workers, %s rec/s out, end-to-end p99 %s ms merged; desired: %s", t.Workers, num(t.OutRate), num(f.EndToEnd.P99ms), f.Asks)
		if f.Desired != nil && t.Following > 0 {
			line += fmt.Sprintf(" (%d/%d applied)", t.Applied, t.Following)
		}
		out = append(out, line)
	}
	if ro := r.Rollout; ro != nil {
		out = append(out, "Rollout: "+ro.Summary)
	}
	if len(r.Advice) > 0 {
		crit := 0
		for _, a := range r.Advice {
			if a.Severity == doctor.SeverityCritical {
				crit++
			}
		}
		out = append(out, fmt.Sprintf("Advice: %d item(s), %d critical; first: %s", len(r.Advice), crit, r.Advice[0].Title))
	}
	if len(r.Errors) > 0 {
		out = append(out, fmt.Sprintf("Could not read: %d part(s), see Errors", len(r.Errors)))
	}
	if len(out) == 0 {
		out = []string{"Nothing was known at this moment (no Kafka snapshot, model status or worker stats)."}
	}
	return out
}

// count prints 12345 as 12,345.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func num(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func seconds(s float64) string {
	if s >= 120 {
		return (time.Duration(s) * time.Second).String()
	}
	return fmt.Sprintf("%.1f s", s)
}

// JSON is the twin, indented, with a trailing newline.
func (r Report) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	// A secret the caller did not name but registered may sit in a field
	// this package did not copy through red() (none today): scrub the
	// encoded text too, in its JSON-escaped form.
	return config.ScrubJSON(buf.Bytes()), nil
}

// Paths returns where Write puts the Markdown and its JSON twin: FILE as
// given (".md" added when it has no extension) and FILE with ".json".
func Paths(file string) (md, js string) {
	ext := filepath.Ext(file)
	if ext == "" {
		file += ".md"
		ext = ".md"
	}
	return file, strings.TrimSuffix(file, ext) + ".json"
}

// Write builds the report and writes both files (mode 0600: hostnames and
// topology are not for every local user). It returns their paths.
func Write(file string, in Input) (md, js string, err error) {
	if file == "" {
		return "", "", errors.New("--report: empty file name (give a path like /tmp/incident.md)")
	}
	md, js = Paths(file)
	r := Build(in)
	j, err := r.JSON()
	if err != nil {
		return "", "", fmt.Errorf("report: encode JSON: %w", err)
	}
	if err := os.WriteFile(md, []byte(r.Markdown()), 0o600); err != nil {
		return "", "", fmt.Errorf("--report %s: %v (pick a writable path)", md, errors.Unwrap(err))
	}
	if err := os.WriteFile(js, j, 0o600); err != nil {
		return "", "", fmt.Errorf("--report %s: %v (pick a writable path)", js, errors.Unwrap(err))
	}
	return md, js, nil
}

// sortedKeys returns a map's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
