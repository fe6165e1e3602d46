package tui

import "time"

// Data is the one immutable view-model the whole screen renders from. An
// adapter fills it from the real collector, worker and perf snapshots every
// second; tests fill it by hand, which is what makes every screen
// golden-testable. Nothing in tui/ mutates a Data after it is handed over.
type Data struct {
	Now time.Time

	// Where we are and what we may do.
	Mode     string   // "embedded" or "attached"
	Brokers  []string // bootstrap addresses
	ReadOnly string   // non-empty: scale/version/perf are disabled, with this reason
	Attached bool     // true: destructive actions ask for confirmation first
	NoWorker bool     // watching only: no local group members
	DemoRate float64  // demo traffic target in msg/s; 0 = no demo generator

	// The pipeline's identity.
	Input, Output, DLQTopic, Group string
	Model                          string
	TFServing                      string // TF Serving address

	Header  HeaderData
	Kafka   KafkaData
	Flow    ThroughputData
	Latency LatencyData
	Models  ModelsData
	Workers WorkersData
	Events  EventsData
	DLQ     DLQData
	Perf    PerfData
	Fleet   FleetData   // every worker pool of the group (fleet.go)
	Ops     OpsData     // operator actions: the running replay (operator.go)
	Rollout RolloutData // the group's gradual rollout (rollout.go)
}

// HeaderData is the worker/controller state the header shows.
type HeaderData struct {
	GroupState string // Stable, PreparingRebalance, Empty, ...
	Health     string // Burrow status: OK WARN STALL STOP REWIND ERR NOTFOUND
	// Rebalance is how long the group has been rebalancing (0: it is not);
	// RebalanceAtLeast: it already was when the console first looked.
	Rebalance        time.Duration
	RebalanceAtLeast bool
	// Notice is the one line the operator must read now (records waiting
	// with nothing consuming them, a stuck rebalance, a group that does
	// not exist); "" = none. The header grows a line for it.
	Notice        string
	Target        string // what the worker asks for: "latest", "version 2", "label stable"
	Served        int64  // model version that served the most recent results; 0 = none yet
	Workers       int    // local group members
	RemoteMembers int    // group members outside this process
	Breaker       string // closed, open, half-open
	Paused        bool
	// Skew is version skew across TF Serving hosts, short and naming them
	// ("v2 missing on 10.0.0.3:8500"); "" = the hosts agree. SkewHosts are
	// the hosts it names, all a narrow header has room for.
	Skew      string
	SkewHosts []string
}

// KafkaData is the lag panel's content.
type KafkaData struct {
	At            time.Time // when the collector took the snapshot
	Err           string
	Partitions    []Partition
	TotalLag      int64 // includes NoCommitLag
	NoCommitLag   int64 // of TotalLag: on partitions without a commit
	MaxLagSeconds float64
	LagTrend      []float64 // total lag, oldest first, one sample per refresh
}

// Partition is one row of the lag table.
type Partition struct {
	ID          int32
	Lag         int64 // -1: unknown
	NoCommit    bool  // Lag is the backlog of a partition the group never committed on
	LagSeconds  float64
	ProduceRate float64 // msg/s
	ConsumeRate float64 // msg/s
	Owner       string  // member client id; "" = unassigned
	Status      string  // Burrow partition status
}

// Sample is one point of a time series.
type Sample struct {
	T time.Time
	V float64
}

// ThroughputData is the in/out msg/s history.
type ThroughputData struct {
	At  time.Time
	In  []Sample // produce rate into the input topic
	Out []Sample // results produced to the output topic
}

// Percentiles is one latency distribution summary.
type Percentiles struct {
	P50, P95, P99, Max time.Duration
}

// LatencySample is one point of the latency history.
type LatencySample struct {
	T time.Time
	Percentiles
}

// LatencyData is the TF Serving panel's content.
type LatencyData struct {
	At      time.Time
	Err     string
	Predict Percentiles // TF Serving Predict round trip
	E2E     Percentiles // record timestamp -> result acked
	QPS     float64     // Predict calls per second
	Rows    float64     // rows predicted per second
	Batch   float64     // mean rows per Predict
	Errors  int64       // Predict errors since start
	SLO     time.Duration
	History []LatencySample
	// Server is TF Serving's own account of the same requests, beside the
	// workers' client-side figures above: is it the model or the pipeline.
	Server ServerLatency
}

// ServerLatency is what TF Serving's Prometheus page says about the model
// over the last scrape interval: the time inside the model server, without
// the network and the workers' queues. The zero value (no Source, no Err)
// draws nothing.
type ServerLatency struct {
	Source string // the page read
	Err    string // why the figures are unknown ("" with Known)
	Known  bool
	// P50..P99 are interpolated in TF Serving's histogram buckets (exact to
	// the bucket); there is no max.
	P50, P95, P99, Mean time.Duration
	RPS                 float64 // requests/s, every status
	Errors              float64 // requests that did not end OK, in the interval
	ByStatus            string  // the errors by status: "NOT_FOUND 3, INVALID_ARGUMENT 1"
}

// ModelVersion is one version the model server reports.
type ModelVersion struct {
	Version int64
	State   string // START LOADING AVAILABLE UNLOADING END
	Labels  []string
	Served  bool    // the worker's target resolves to this version
	Rate    float64 // results/s this version served
	P99     time.Duration
	Count   int64
}

// ModelTensor is one signature input or output.
type ModelTensor struct {
	Name, DType, Shape string // "user_id", "DT_INT64", "[-1]"
	Field              string // inputs: the record field, when not the name
}

// ModelsData is the models panel's content.
type ModelsData struct {
	At       time.Time
	Err      string
	Versions []ModelVersion
	// Inputs and Outputs are the latest version's serving_default; empty:
	// not known yet.
	Inputs, Outputs []ModelTensor
	// StandIn: the model server marks the model as a stand-in (outputs made
	// up from a real model's signature); the header says so.
	StandIn bool
	// Hosts are the TF Serving hosts behind --tfserving, shown (here and in
	// the latency panel) when there are several.
	Hosts []TFHost
}

// TFHost is one TF Serving host as the client sees it.
type TFHost struct {
	Addr     string
	State    string // up, down, ejected, excluded, unknown
	Reason   string // why it is not up
	Versions string // AVAILABLE versions, e.g. "1,2"
	Share    float64
	P50, P99 time.Duration
	Errors   int64
}

// Member is one consumer-group member.
type Member struct {
	ID         string
	ClientID   string
	Host       string
	Local      bool // runs in this process
	Partitions []int32
	InRate     float64
	OutRate    float64
	InFlight   int
	Batch      float64
}

// Skew is partition skew as kafkatop shows it.
type Skew struct {
	RatePeakToAvg, RateCV float64
	LagPeakToAvg, LagCV   float64
}

// WorkersData is the workers panel's content.
type WorkersData struct {
	At      time.Time
	Members []Member
	Skew    Skew
}

// Level grades an event.
type Level int

const (
	Info Level = iota
	Warn
	Error
)

// Event is one line of the event log.
type Event struct {
	T     time.Time
	Kind  string // rebalance, scale, version, breaker, slo, perf, error, dlq
	Level Level
	Text  string
}

// EventsData is the events panel's content, newest first.
type EventsData struct {
	Items []Event
}

// DeadLetter is one record the worker sent to the DLQ.
type DeadLetter struct {
	T       time.Time
	Reason  string
	Source  string // topic/partition/offset
	Preview string // first bytes of the payload, printable
}

// DLQData is the DLQ inspector's content, newest first.
type DLQData struct {
	At      time.Time
	Err     string
	Total   int64 // records in the DLQ topic (high watermark - log start)
	Read    int   // of them, the newest read into Records
	Records []DeadLetter
}

// Scenario is one perf scenario the menu offers.
type Scenario struct {
	Name         string
	Streams      int
	PayloadBytes int
	TargetRate   float64
	SLO          time.Duration
	Duration     time.Duration
}

// PerfProgress is a running perf run.
type PerfProgress struct {
	Scenario string
	Phase    string // starting, warmup, running, draining
	Elapsed  time.Duration
	Duration time.Duration
	Sent     int64
	Received int64
	P99      time.Duration
}

// PerfMetric is one row of the results table.
type PerfMetric struct {
	Name           string
	Unit           string // "msg/s", "ms", ""
	Value          float64
	Prev           float64
	HasPrev        bool
	HigherIsBetter bool
}

// PerfResult is a finished run against its SLO and the previous run.
type PerfResult struct {
	Scenario string
	At       time.Time
	Pass     bool
	Verdict  string // why it passed or failed
	Metrics  []PerfMetric
}

// PerfData is the perf panel's content.
type PerfData struct {
	Scenarios []Scenario
	Running   *PerfProgress
	Result    *PerfResult
	Err       string
}

// FleetData is every worker pool of the group as the fleet topic tells it:
// each headless `inferops worker` and each console's own pool is one
// instance. Known false: the fleet was not read (Err says why) and the
// workers panel shows the group's members from Kafka instead.
type FleetData struct {
	At    time.Time
	Known bool
	Err   string
	// Self is this console's own pool's instance ("" with --no-worker).
	Self      string
	Instances []Instance // by name
	// Others are group members Kafka reports that no instance claims (a
	// consumer that is not inferops, or one too old to publish).
	Others []Member
	// Totals over the live instances.
	Live, Lost      int
	Workers         int
	Members         int
	Partitions      int // of the input: no more workers than this consume
	InRate, OutRate float64
	BreakersOpen    int
	// The group's desired state: in words ("" = none), its sequence, and
	// how many of the live instances that follow control applied it.
	// DesiredWorkers is its total, -1 when it sets none.
	Desired            string
	Seq                uint64
	DesiredWorkers     int
	Applied, Following int
}

// Instance is one worker pool of the fleet.
type Instance struct {
	Name, Host string
	Inferops   string        // its inferops version
	State      string        // live, lost (silent for 3 intervals), duplicate
	Age        time.Duration // since its latest snapshot
	// Control is applied, pending, failed, pinned (--control=ignore) or
	// none (the group has no desired state); Seq the sequence it applied,
	// ControlNote what it could not apply.
	Control     string
	Seq         uint64
	ControlNote string
	Workers     int
	Members     []Member
	Partitions  []int32
	InRate      float64
	OutRate     float64
	E2EP99      time.Duration // end-to-end p99 of its last 10 s
	Serving     string        // versions that served rows in that window: "2", "1,2"
	Target      string
	Breaker     string
	Paused      bool
}
