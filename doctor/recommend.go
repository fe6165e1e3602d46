package doctor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/inferops/inferops/pipeline"
)

// The seed's numbers, shared by the checks and the printed files so the two
// can never disagree.
const (
	SeedPartitions        = 12
	SeedReplication       = 3
	SeedMinISR            = 2
	SeedMessageMaxBytes   = 2000000
	SeedReplicaFetchBytes = 3000000
	SeedRetentionHours    = 72
	SeedCompression       = pipeline.DefaultCompression
	SeedBatchSize         = 65536
	SeedLingerMs          = 5
	SeedMaxBatchSize      = 64
	SeedBatchTimeoutMicro = 1000
)

// Printable names the files `inferops doctor --print NAME` can write.
var Printable = map[string]func() string{
	"sysctl":             recommendedSysctl,
	"kafka-broker":       recommendedBroker,
	"kafka-producer":     recommendedProducer,
	"tfserving-batching": recommendedBatching,
}

// PrintableNames lists the --print values, sorted, for help and errors.
func PrintableNames() []string {
	names := make([]string, 0, len(Printable))
	for n := range Printable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Recommended returns the named configuration file, ready to drop in place.
func Recommended(name string) (string, error) {
	f, ok := Printable[name]
	if !ok {
		return "", fmt.Errorf("--print %q: unknown file (choose one of %s)", name, strings.Join(PrintableNames(), ", "))
	}
	return f(), nil
}

func recommendedSysctl() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", SysctlFile)
	b.WriteString("# inferops: the seed's kernel settings for Kafka brokers and inference hosts (RHEL 8).\n")
	fmt.Fprintf(&b, "# Install: sudo install -m 0644 this-file %s && sudo sysctl --system\n", SysctlFile)
	b.WriteString("# Check:   inferops doctor (Host section)\n")
	for _, s := range Sysctls {
		why := s.Why
		if i := strings.Index(why, ";"); i > 0 {
			why = why[:i]
		}
		fmt.Fprintf(&b, "\n# %s\n%s = %d\n", why, s.Key, s.Want)
	}
	return b.String()
}

func recommendedBroker() string {
	return fmt.Sprintf(`# /opt/kafka/config/server.properties (merge these keys into each broker's file)
# inferops: the seed's broker settings for the ai_input -> ai_output pipeline (Kafka 3.5).
# Apply: edit on every broker, then restart them one at a time
#   (/opt/kafka/bin/kafka-server-stop.sh; /opt/kafka/bin/kafka-server-start.sh -daemon /opt/kafka/config/server.properties),
#   waiting for under-replicated partitions to reach 0 between brokers.
# Existing topics keep their own settings: see 'inferops doctor' for the kafka-configs.sh commands.

# Partitions bound consumer parallelism: one inference worker per partition at most.
num.partitions=%d
# Three copies survive one broker loss; with min.insync.replicas=2 and acks=all no
# acknowledged record is lost.
default.replication.factor=%d
min.insync.replicas=%d
unclean.leader.election.enable=false
auto.create.topics.enable=false
# Feature vectors and model outputs can exceed Kafka's 1 MB default.
message.max.bytes=%d
# Must be >= message.max.bytes or followers cannot replicate the largest batch.
replica.fetch.max.bytes=%d
# Three days to replay after an outage or a bad model version.
log.retention.hours=%d
# zstd: best ratio per CPU for JSON feature records; cuts network and disk.
compression.type=%s
`, SeedPartitions, SeedReplication, SeedMinISR, SeedMessageMaxBytes, SeedReplicaFetchBytes, SeedRetentionHours, SeedCompression)
}

func recommendedProducer() string {
	return fmt.Sprintf(`# /opt/kafka/config/producer.properties (kafka-*-producer.sh --producer.config; or merge into your producer's config)
# inferops: the seed's producer settings for ai_input.
# bootstrap.servers=broker1:9092,broker2:9092,broker3:9092

# Fill 64 KB batches, waiting at most 5 ms: high throughput for a few ms of latency.
batch.size=%d
linger.ms=%d
compression.type=%s
# No loss and no duplicates when a broker fails over.
acks=all
enable.idempotence=true
max.in.flight.requests.per.connection=5
# Allow records up to the broker's message.max.bytes.
max.request.size=%d
`, SeedBatchSize, SeedLingerMs, SeedCompression, SeedMessageMaxBytes)
}

func recommendedBatching() string {
	return fmt.Sprintf(`# /models/batching_config.txt (TF Serving BatchingParameters, protobuf text format)
# inferops: the seed's server-side batching for my_model.
# Use: tensorflow_model_server ... --enable_batching=true --batching_parameters_file=/models/batching_config.txt
#   docker: docker run ... -v /models:/models tensorflow/serving:2.12.0 \
#           --enable_batching=true --batching_parameters_file=/models/batching_config.txt
#   (the image reads flags after the image name; it does not read a batching environment variable)
# Check:  inferops doctor --tfserving-rest HOST:8501 (":tensorflow:serving:batching_session" metrics appear)

# Largest batch formed; the worker's --max-batch should match.
max_batch_size { value: %d }
# Longest a partial batch waits (1 ms): bounds the latency batching adds.
batch_timeout_micros { value: %d }
# Queue bound in batches: 32 x 64 requests is about 70 ms of backlog at the seed's
# 28,000 QPS; beyond that requests fail fast (UNAVAILABLE) instead of missing the SLO.
max_enqueued_batches { value: 32 }
# Batches run in parallel: set to the TF Serving host's CPU cores.
num_batch_threads { value: 8 }
`, SeedMaxBatchSize, SeedBatchTimeoutMicro)
}
