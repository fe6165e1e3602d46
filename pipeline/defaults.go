package pipeline

import "time"

// The seed's pipeline: its topics, consumer group and model. Every flag
// default, config-file default and doctor check reads these.
const (
	DefaultInput  = "ai_input"
	DefaultOutput = "ai_output"
	DefaultDLQ    = "ai_input.dlq"
	DefaultGroup  = "tf_serving_group"
	DefaultModel  = "my_model"

	// Partitions of the topics inferops creates when they are missing:
	// 12 for the input and output (one per worker at the seed's scale), 3
	// for dead letters (a trickle).
	InputPartitions  = 12
	OutputPartitions = 12
	DLQPartitions    = 3
)

// Kafka client defaults: the seed runs Kafka 3.5.
const (
	DefaultKafkaVersion = "3.5.0"
	DefaultClientID     = "inferops"
	// DefaultCompression is the seed producer's compression.type.
	DefaultCompression = "zstd"
)

// The embedded stack's addresses: Kafka's and TF Serving's usual ports, on
// loopback so nothing is exposed unless the operator names a host.
const (
	DefaultKafkaAddr = "127.0.0.1:9092"
	DefaultGRPCAddr  = "127.0.0.1:8500" // TF Serving's --port
	DefaultRESTAddr  = "127.0.0.1:8501" // TF Serving's --rest_api_port (and Prometheus)
)

// The worker's defaults: TF Serving's batching from the seed
// (max_batch_size 64, batch_timeout_micros 1000) and message.max.bytes.
const (
	DefaultWorkers         = 4
	DefaultMaxBatch        = 64
	DefaultBatchTimeout    = time.Millisecond
	DefaultMaxMessageBytes = 2_000_000
)

// The worker's consumer-group timeouts. A member that dies without leaving
// the group (SIGKILL, OOM, a lost host) is dropped by the coordinator after
// GroupSessionTimeout without a heartbeat; during a rebalance the
// coordinator waits up to GroupRebalanceTimeout for the members to rejoin.
// Nobody consumes meanwhile, so these bound how long a crash stalls the
// group, and the advice about a stuck rebalance quotes them.
const (
	GroupSessionTimeout   = 10 * time.Second
	GroupHeartbeat        = time.Second
	GroupRebalanceTimeout = 30 * time.Second
)

// DefaultSLO is the small scenario's end-to-end p99 target (the seed's
// 50 ms), which the console flags as a breach.
const DefaultSLO = 50 * time.Millisecond

// The fleet's topics: every worker pool publishes its telemetry to the
// fleet topic (key = instance) and follows its group's desired state on the
// control topic (key = group). Package fleet reads and writes them.
const (
	DefaultFleetTopic   = "inferops.fleet"
	DefaultControlTopic = "inferops.control"
	// DefaultFleetInterval is how often each instance publishes; one
	// silent for three intervals is lost.
	DefaultFleetInterval = time.Second
)

// TFServingMetricsPath is where TF Serving (and the embedded model server)
// serve Prometheus text on the REST port.
const TFServingMetricsPath = "/monitoring/prometheus/metrics"
