package doctor

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/pipeline"
)

// Severity orders advice: the console shows the most severe first.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarn     Severity = "warn"
	SeverityCritical Severity = "critical"
)

func (s Severity) rank() int {
	switch s {
	case SeverityCritical:
		return 2
	case SeverityWarn:
		return 1
	}
	return 0
}

// Advice is one symptom turned into an action, with the numbers that
// triggered it so the operator can judge it.
type Advice struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Evidence string   `json:"evidence"`
	Fix      string   `json:"fix"`
}

// Thresholds tune when the rules fire. The defaults come from the seed's
// SLOs (50 ms for the small scenario) and its batching settings.
type Thresholds struct {
	// MinSamples is how many window points a trend needs before it counts.
	MinSamples int
	// LagGrowthMin is the lag increase over the window (records) below which
	// growth is noise.
	LagGrowthMin int64
	// P99RiseRatio: p99 counts as rising when last >= first*ratio.
	P99RiseRatio float64
	// SmallBatchFraction: batches are "small" when the average batch is
	// below this fraction of --max-batch (and below SmallBatchMax).
	SmallBatchFraction float64
	SmallBatchMax      float64
	// HeavyLatency and LowQPS: Predict slower than HeavyLatency while the
	// server sees fewer than LowQPS calls/s means the model itself is slow.
	HeavyLatency time.Duration
	LowQPS       float64
	// DLQRateMax (records/s) and DLQShareMax (fraction of consumed records):
	// either being exceeded fires the bad-producer rule.
	DLQRateMax  float64
	DLQShareMax float64
	// RebalanceStuck: a rebalance lasting longer is waiting for someone (a
	// healthy one takes a second or two).
	RebalanceStuck time.Duration
}

// SetDefaults fills unset thresholds.
func (t *Thresholds) SetDefaults() {
	if t.MinSamples <= 0 {
		t.MinSamples = 3
	}
	if t.LagGrowthMin <= 0 {
		t.LagGrowthMin = 100
	}
	if t.P99RiseRatio <= 1 {
		t.P99RiseRatio = 1.2
	}
	if t.SmallBatchFraction <= 0 {
		t.SmallBatchFraction = 0.25
	}
	if t.SmallBatchMax <= 0 {
		t.SmallBatchMax = 8
	}
	if t.HeavyLatency <= 0 {
		t.HeavyLatency = 50 * time.Millisecond
	}
	if t.LowQPS <= 0 {
		t.LowQPS = 50
	}
	if t.DLQRateMax <= 0 {
		t.DLQRateMax = 1
	}
	if t.DLQShareMax <= 0 {
		t.DLQShareMax = 0.01
	}
	if t.RebalanceStuck <= 0 {
		t.RebalanceStuck = 5 * time.Second
	}
}

// Validate rejects thresholds that would make every rule fire or none.
func (t Thresholds) Validate() error {
	switch {
	case t.MinSamples < 2:
		return fmt.Errorf("advice thresholds: MinSamples %d: a trend needs at least 2 samples", t.MinSamples)
	case t.SmallBatchFraction > 1:
		return fmt.Errorf("advice thresholds: SmallBatchFraction %.2f: must be <= 1", t.SmallBatchFraction)
	case t.DLQShareMax > 1:
		return fmt.Errorf("advice thresholds: DLQShareMax %.2f: must be <= 1", t.DLQShareMax)
	}
	return nil
}

// Rule is one advice rule: a pure function of the evidence.
type Rule struct {
	Name  string
	Check func(pipeline.Evidence, Thresholds) (Advice, bool)
}

// Rules is every advice rule, in the order they are evaluated.
var Rules = []Rule{
	{"breaker-open", ruleBreakerOpen},
	{"consumer-stopped", ruleBurrowStop},
	{"consumer-stalled", ruleBurrowStall},
	{"group-not-found", ruleGroupNotFound},
	{"rebalance-stuck", ruleRebalanceStuck},
	{"lag-scale-workers", ruleLagScaleWorkers},
	{"lag-add-partitions", ruleLagAddPartitions},
	{"batching", ruleBatching},
	{"model-too-heavy", ruleModelHeavy},
	{"dlq-bad-producer", ruleDLQ},
}

// Advise applies every rule with the default thresholds. It is cheap (no
// I/O, no allocation beyond the result) so the console calls it on every
// refresh.
func Advise(e pipeline.Evidence) []Advice {
	var t Thresholds
	t.SetDefaults()
	return t.Advise(e)
}

// Advise applies every rule with these thresholds and returns the advice,
// most severe first (rule order breaks ties).
func (t Thresholds) Advise(e pipeline.Evidence) []Advice {
	t.SetDefaults()
	var out []Advice
	for _, r := range Rules {
		if a, ok := r.Check(e, t); ok {
			a.Rule = r.Name
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity.rank() > out[j].Severity.rank() })
	return out
}

// lagGrowing reports whether the group is falling behind, and a short
// description of the evidence.
func lagGrowing(e pipeline.Evidence, t Thresholds) (bool, string) {
	if len(e.Lag) >= t.MinSamples {
		first, last := e.Lag[0], e.Lag[len(e.Lag)-1]
		xs := make([]float64, len(e.Lag))
		for i, v := range e.Lag {
			xs[i] = float64(v)
		}
		if last-first >= t.LagGrowthMin && slope(xs) > 0 {
			return true, fmt.Sprintf("lag %d -> %d over the last %d samples", first, last, len(e.Lag))
		}
		return false, ""
	}
	if e.LagTrend > 0 {
		return true, fmt.Sprintf("lag growing by %.0f records/s", e.LagTrend)
	}
	return false, ""
}

// slope is the least-squares slope of xs against its index: robust to one
// noisy sample, unlike comparing neighbours.
func slope(xs []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxy, sxx float64
	for i, y := range xs {
		x := float64(i)
		sx += x
		sy += y
		sxy += x * y
		sxx += x * x
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func brokerList(e pipeline.Evidence) string {
	if len(e.Brokers) == 0 {
		return "<broker:9092>"
	}
	return strings.Join(e.Brokers, ",")
}

func groupName(e pipeline.Evidence) string { return addrOr(e.Group, pipeline.DefaultGroup) }

func topicName(e pipeline.Evidence) string {
	if e.Topic == "" {
		return pipeline.DefaultInput
	}
	return e.Topic
}

func ruleLagScaleWorkers(e pipeline.Evidence, t Thresholds) (Advice, bool) {
	grow, ev := lagGrowing(e, t)
	if !grow || e.Partitions <= 0 || e.Members >= e.Partitions {
		return Advice{}, false
	}
	ev += fmt.Sprintf("; %d members for %d partitions", e.Members, e.Partitions)
	if e.Workers > 0 {
		ev += fmt.Sprintf("; --workers %d", e.Workers)
	}
	return Advice{
		Severity: SeverityWarn,
		Title:    "consumer lag growing with idle partitions: scale workers",
		Evidence: ev,
		Fix: fmt.Sprintf("press + in the console to add a worker (up to %d, one per partition), or restart with --workers %d",
			e.Partitions, e.Partitions),
	}, true
}

func ruleLagAddPartitions(e pipeline.Evidence, t Thresholds) (Advice, bool) {
	grow, ev := lagGrowing(e, t)
	if !grow || e.Partitions <= 0 || e.Members < e.Partitions {
		return Advice{}, false
	}
	want := e.Partitions * 2
	return Advice{
		Severity: SeverityWarn,
		Title:    "consumer lag growing and every partition has a consumer: add partitions",
		Evidence: ev + fmt.Sprintf("; %d members for %d partitions", e.Members, e.Partitions),
		Fix: fmt.Sprintf("kafka-topics.sh --bootstrap-server %s --alter --topic %s --partitions %d, then press + to add workers "+
			"(new partitions change which partition a key maps to)", brokerList(e), topicName(e), want),
	}, true
}

func ruleBatching(e pipeline.Evidence, t Thresholds) (Advice, bool) {
	if len(e.PredictP99) < t.MinSamples || e.AvgBatchSize <= 0 {
		return Advice{}, false
	}
	first, last := e.PredictP99[0], e.PredictP99[len(e.PredictP99)-1]
	xs := make([]float64, len(e.PredictP99))
	for i, v := range e.PredictP99 {
		xs[i] = float64(v)
	}
	if first <= 0 || float64(last) < float64(first)*t.P99RiseRatio || slope(xs) <= 0 {
		return Advice{}, false
	}
	small := t.SmallBatchMax
	if e.MaxBatch > 0 {
		small = min(small, float64(e.MaxBatch)*t.SmallBatchFraction)
	}
	if e.AvgBatchSize >= small {
		return Advice{}, false
	}
	ev := fmt.Sprintf("Predict p99 %s -> %s while the average batch is %.1f records", round(first), round(last), e.AvgBatchSize)
	if e.MaxBatch > 0 {
		ev += fmt.Sprintf(" (--max-batch %d)", e.MaxBatch)
	}
	return Advice{
		Severity: SeverityWarn,
		Title:    "Predict p99 rising while batches stay small: enable or tune batching",
		Evidence: ev,
		Fix: "let batches fill: raise --batch-timeout (e.g. 2ms) and keep --max-batch 64; on TF Serving run with --enable_batching " +
			"--batching_parameters_file (see 'inferops doctor --print tfserving-batching')",
	}, true
}

func ruleModelHeavy(e pipeline.Evidence, t Thresholds) (Advice, bool) {
	if e.PredictLatency < t.HeavyLatency || e.PredictQPS <= 0 || e.PredictQPS >= t.LowQPS {
		return Advice{}, false
	}
	return Advice{
		Severity: SeverityWarn,
		Title:    "Predict slow at low load: the model is too heavy for this hardware",
		Evidence: fmt.Sprintf("Predict latency %s at only %.1f calls/s (slow without queueing)", round(e.PredictLatency), e.PredictQPS),
		Fix:      "serve on a GPU (tensorflow/serving:2.12.0-gpu), or shrink the model: pruning, distillation or quantisation",
	}, true
}

func ruleDLQ(e pipeline.Evidence, t Thresholds) (Advice, bool) {
	if e.DLQRate <= 0 {
		return Advice{}, false
	}
	share := 0.0
	if e.RecordsPerSec > 0 {
		share = e.DLQRate / e.RecordsPerSec
	}
	if e.DLQRate <= t.DLQRateMax && share <= t.DLQShareMax {
		return Advice{}, false
	}
	ev := fmt.Sprintf("%.1f records/s to the DLQ", e.DLQRate)
	if e.RecordsPerSec > 0 {
		ev += fmt.Sprintf(" (%.1f%% of input)", share*100)
	}
	if len(e.DLQTopReasons) > 0 {
		var rs []string
		for i, r := range e.DLQTopReasons {
			if i == 3 {
				break
			}
			rs = append(rs, fmt.Sprintf("%s x%d", r.Reason, r.Count))
		}
		ev += "; top reasons: " + strings.Join(rs, ", ")
	}
	dlq := topicName(e) + ".dlq"
	return Advice{
		Severity: SeverityWarn,
		Title:    "records going to the DLQ: a producer is sending bad input",
		Evidence: ev,
		Fix: fmt.Sprintf("read a few with kcat -C -b %s -t %s -c 5 -f '%%h %%s\\n' to find the producer (headers carry the reason), "+
			"fix its records to match the model's signature (the detail names the input)", brokerList(e), dlq),
	}, true
}

func ruleBreakerOpen(e pipeline.Evidence, _ Thresholds) (Advice, bool) {
	if !strings.EqualFold(e.BreakerState, "open") {
		return Advice{}, false
	}
	addr := e.TFServingAddr
	if addr == "" {
		addr = "TF Serving"
	}
	return Advice{
		Severity: SeverityCritical,
		Title:    "circuit breaker open: TF Serving is down or failing",
		Evidence: fmt.Sprintf("Predict calls to %s are failing; workers stopped sending", addr),
		Fix: fmt.Sprintf("check the server: 'inferops doctor --tfserving %s', systemctl status tensorflow_model_server "+
			"(or docker ps / docker logs tf_serving); workers retry on their own once it answers", addrOr(e.TFServingAddr, "HOST:8500")),
	}, true
}

func addrOr(a, def string) string {
	if a == "" {
		return def
	}
	return a
}

// burrowRule is the rule for one Burrow status that is always critical:
// when the group's status is status, advice says what it means and the fix.
func burrowRule(status string, advice func(e pipeline.Evidence) Advice) func(pipeline.Evidence, Thresholds) (Advice, bool) {
	return func(e pipeline.Evidence, _ Thresholds) (Advice, bool) {
		if !strings.EqualFold(e.BurrowStatus, status) {
			return Advice{}, false
		}
		a := advice(e)
		a.Severity = SeverityCritical
		return a, true
	}
}

var ruleBurrowStop = burrowRule("STOP", func(e pipeline.Evidence) Advice {
	return Advice{
		Title:    "consumer group stopped committing (Burrow STOP)",
		Evidence: fmt.Sprintf("group %s has records waiting and no commit within the window (or none ever); %d members", groupName(e), e.Members),
		Fix:      "the workers are gone or wedged: check they run (press + to start one, or restart 'inferops worker'), then the worker log",
	}
})

var ruleBurrowStall = burrowRule("STALL", func(e pipeline.Evidence) Advice {
	return Advice{
		Title:    "consumer stuck: offsets not moving while lag remains (Burrow STALL)",
		Evidence: fmt.Sprintf("group %s commits the same offsets every sample; %d members", groupName(e), e.Members),
		Fix:      "a worker is blocked, usually on Predict: check the breaker and TF Serving latency, then restart the stuck worker (- then +)",
	}
})

var ruleGroupNotFound = burrowRule("NOTFOUND", func(e pipeline.Evidence) Advice {
	return Advice{
		Title:    "consumer group does not exist: nothing is being judged",
		Evidence: fmt.Sprintf("group %s has no members and no committed offset on %s", groupName(e), topicName(e)),
		Fix: fmt.Sprintf("check --group against the workers' group (kafka-consumer-groups.sh --bootstrap-server %s --list); "+
			"if it is right, no worker has ever consumed %s: start them (inferops worker)", brokerList(e), topicName(e)),
	}
})

// ruleRebalanceStuck explains a rebalance that lasts: during one nobody
// consumes, and the usual cause is a member that died without leaving.
func ruleRebalanceStuck(e pipeline.Evidence, t Thresholds) (Advice, bool) {
	if e.Rebalancing < t.RebalanceStuck {
		return Advice{}, false
	}
	state := e.GroupState
	if state == "" {
		state = "rebalancing"
	}
	dur := round(e.Rebalancing).Round(time.Second).String()
	if e.RebalanceAtLeast {
		dur = "at least " + dur
	}
	ev := fmt.Sprintf("group %s in %s for %s", groupName(e), state, dur)
	if len(e.RebalanceAwaited) > 0 {
		ev += "; waiting for " + strings.Join(e.RebalanceAwaited, ", ")
	}
	// A member killed without leaving is waited for until its session
	// times out, then the others get the rebalance timeout to rejoin: past
	// both, someone is alive but not rejoining.
	bound := pipeline.GroupSessionTimeout + pipeline.GroupRebalanceTimeout
	a := Advice{
		Severity: SeverityWarn,
		Title:    "group stuck rebalancing: nobody consumes until the members it waits for rejoin or time out",
		Evidence: ev,
		Fix: fmt.Sprintf("a member killed without leaving the group (kill -9, OOM, a lost host) is waited for until its session times out: "+
			"inferops worker uses a %s session and a %s rebalance timeout, so this ends by itself within %s (other clients: their session.timeout.ms "+
			"and max.poll.interval.ms). If the members listed are gone, wait; stop workers with SIGTERM (systemctl stop inferops-worker), which leaves "+
			"the group at once, rather than kill -9",
			pipeline.GroupSessionTimeout, pipeline.GroupRebalanceTimeout, bound),
	}
	if e.Rebalancing > bound {
		a.Severity = SeverityCritical
		a.Title = "group rebalancing longer than the worker's timeouts allow: a member is alive but not rejoining"
		a.Fix = fmt.Sprintf("longer than inferops worker's %s session + %s rebalance timeout: one of the members listed still runs but does not rejoin "+
			"(blocked in a batch, or a client with longer timeouts); find it by client id and host and restart it there "+
			"(systemctl restart inferops-worker), then read its log", pipeline.GroupSessionTimeout, pipeline.GroupRebalanceTimeout)
	}
	return a, true
}

// round keeps durations readable in one line of the console.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
