package pipeline

import (
	"fmt"
	"time"
)

// Level grades an event for the operator.
type Level int

const (
	Info Level = iota
	Warn
	Error
)

func (l Level) String() string {
	switch l {
	case Warn:
		return "warn"
	case Error:
		return "error"
	}
	return "info"
}

// MarshalText writes the level by name in JSON (reports, fleet telemetry).
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level written by MarshalText.
func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "info", "":
		*l = Info
	case "warn":
		*l = Warn
	case "error":
		*l = Error
	default:
		return fmt.Errorf("unknown event level %q (want info, warn or error)", b)
	}
	return nil
}

// Sources of events: who saw it.
const (
	SourceWorker  = "worker"  // the inference worker pool
	SourceKafka   = "kafka"   // the lag collector
	SourceModels  = "models"  // the model server's status
	SourcePerf    = "perf"    // perf runs
	SourceAdvice  = "advice"  // doctor's advice rules
	SourceConsole = "console" // the operator's own actions in the console
	SourceFleet   = "fleet"   // fleet changes and their acknowledgements, from any console or `inferops fleet`
)

// Kinds of events: what happened.
const (
	KindRebalance = "rebalance"
	KindScale     = "scale"
	KindVersion   = "version"
	KindBreaker   = "breaker"
	KindDLQ       = "dlq"
	KindError     = "error"
	KindLag       = "lag"
	KindSLO       = "slo"
	KindPerf      = "perf"
	KindAdvice    = "advice"
	KindDemo      = "demo"
	KindReport    = "report"
	KindControl   = "control" // a change of a group's desired state, or its acknowledgement
	KindHost      = "host"    // a TF Serving host left or rejoined the rotation
)

// Event is something an operator wants to see: one line of the console's
// event log, of the triage report and of a worker's log. Every source uses
// this one type.
type Event struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Kind    string    `json:"kind"`
	Level   Level     `json:"level"`
	Message string    `json:"message"`
}

// Kinds of the operator's actions on Kafka: a DLQ replay, a consumer-offset
// reset (from `inferops dlq replay`, `inferops offsets reset` or a console).
const (
	KindReplay  = "replay"
	KindOffsets = "offsets"
)
