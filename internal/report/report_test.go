package report

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/fleet"
	"github.com/inferops/inferops/fleet/fleettest"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/config"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

var update = flag.Bool("update", false, "rewrite testdata/moment.{md,json}")

var t0 = time.Date(2026, 11, 24, 15, 40, 2, 0, time.UTC)

// moment is a falling-behind pipeline: partition 7 lags, v2 is slow, the
// breaker is half-open and the advice says why.
func moment() Input {
	parts := make([]cluster.PartitionLag, 0, 12)
	for p := int32(0); p < 12; p++ {
		pl := cluster.PartitionLag{Partition: p, Leader: 0, HighWatermark: 100000 + int64(p)*10, Committed: 99990 + int64(p)*10, Lag: 10,
			LagSeconds: 0.2, ProduceRate: 410, ConsumeRate: 405, Member: fmt.Sprintf("inferops-worker-%d", p%4), Status: cluster.StatusOK,
			LagBasis: cluster.LagCommitted}
		if p == 7 {
			pl.Committed, pl.Lag, pl.LagSeconds, pl.Status = 88070, 12000, 29.5, cluster.StatusWarn
		}
		if p == 11 { // never committed: its whole (trimmed) log waits
			pl.LogStart, pl.Committed, pl.Lag, pl.LagSeconds, pl.Member, pl.Status, pl.LagBasis = 100000, -1, 110, 310, "", cluster.StatusStop, cluster.LagNoCommit
		}
		parts = append(parts, pl)
	}
	return Input{
		Time: t0, Version: "v1.2.3", Host: "rhel8-ops-1", Source: "inferops status --report",
		Kafka: &cluster.Snapshot{Time: t0.Add(-time.Second), Topic: "ai_input", Group: "tf_serving_group", GroupState: "Stable",
			Status: cluster.StatusErr, TotalLag: 12210, CommittedLag: 12100, ResetPolicy: cluster.ResetEarliest,
			MaxLagPartition: 7, MaxLag: 12000, Partitions: parts, Brokers: 3,
			Warnings: []cluster.Warning{{Code: cluster.WarnNoCommit, Message: "1 partition of ai_input without a committed offset: their 110 records (log start to log end, auto.offset.reset=earliest) are counted as lag until the group commits there"}},
			Members: []cluster.Member{
				{MemberID: "m-0", ClientID: "inferops-worker-0", Host: "/10.0.0.5", Partitions: []int32{0, 4, 8}},
				{MemberID: "m-1", ClientID: "inferops-worker-1", Host: "/10.0.0.6", Partitions: []int32{1, 5, 9}},
			}},
		TFServingAddr: "tfs1:8500,tfs2:8500,tfs3:8500", Model: "my_model",
		Fleet: &tfserving.Fleet{Model: "my_model", Target: tfserving.Target{Version: 2}, InRotation: 2,
			Hosts: []tfserving.HostSnapshot{
				{Addr: "tfs1:8500", State: tfserving.HostUp, Versions: []tfserving.VersionStatus{{Version: 2, State: "AVAILABLE"}}, Calls: 26100, Share: 0.503, P50: 6 * time.Millisecond, P99: 47 * time.Millisecond},
				{Addr: "tfs2:8500", State: tfserving.HostUp, Versions: []tfserving.VersionStatus{{Version: 2, State: "AVAILABLE"}}, Calls: 25900, Errors: 12, Share: 0.497, P50: 6 * time.Millisecond, P99: 49 * time.Millisecond},
				{Addr: "tfs3:8500", State: tfserving.HostExcluded, Reason: "my_model v2 is not AVAILABLE here (AVAILABLE: 1)", Versions: []tfserving.VersionStatus{{Version: 1, State: "AVAILABLE"}}},
			},
			Skew: []tfserving.Skew{{Kind: tfserving.SkewTarget, Hosts: []string{"tfs3:8500"}, Message: "my_model v2 missing on tfs3:8500: it gets no v2 traffic"}}},
		ModelVersions: []tfserving.VersionStatus{{Version: 1, State: "END", ErrorCode: "OK"}, {Version: 2, State: "AVAILABLE", ErrorCode: "OK"}},
		ModelLatency:  map[int64]tfserving.LatencySnapshot{2: {Count: 52000, P50: 6 * time.Millisecond, P95: 31 * time.Millisecond, P99: 48 * time.Millisecond, Max: 120 * time.Millisecond}},
		Worker: &worker.Stats{Time: t0, Workers: 4, Target: "my_model@v2", Breaker: "half-open", QPS: 4850, AvgBatch: 7.5,
			Consumed: 1_200_000, Produced: 1_190_000, DLQ: 312, Retries: 40, Errors: map[string]uint64{"invalid_json": 300, "predict": 12},
			Predict:  worker.LatencySummary{P50: 6 * time.Millisecond, P95: 30 * time.Millisecond, P99: 47 * time.Millisecond, Max: 118 * time.Millisecond, Count: 160000},
			EndToEnd: worker.LatencySummary{P50: 11 * time.Millisecond, P95: 60 * time.Millisecond, P99: 95 * time.Millisecond, Max: 240 * time.Millisecond, Count: 1_190_000},
			Lag:      12100,
			Members:  []worker.MemberStats{{ID: "m-0", ClientID: "inferops-worker-0", Partitions: []int32{0, 4, 8}, InRate: 1210, OutRate: 1200, AvgBatch: 7.4, InFlight: 64}}},
		Events: []pipeline.Event{
			{Time: t0.Add(-90 * time.Second), Kind: pipeline.KindRebalance, Message: "group rebalanced: 4 members"},
			{Time: t0.Add(-30 * time.Second), Kind: pipeline.KindBreaker, Message: "breaker open: 5 Predict failures | deadline exceeded"},
		},
		WorkerFleet: func() *fleet.Status { s := fleettest.View(t0, 3, 2).Status(); return &s }(),
		DLQ:         []pipeline.DeadLetter{{Time: t0.Add(-5 * time.Second), Reason: "invalid_json", Topic: "ai_input", Partition: 3, Offset: 99123, Preview: []byte(`{"user":"alice@example.com"`)}},
		Advice: []doctor.Advice{{Rule: "lag-growing", Severity: doctor.SeverityCritical, Title: "Lag is growing on ai_input",
			Evidence: "lag rose 0 -> 12,100 over 60 s", Fix: "inferops console: press + to add workers (4 -> 8)"}},
		Config: []Setting{{"kafka.brokers", "b1:9092,b2:9092", "file"}, {"pipeline.workers", "4", "default"}},
		Errors: []string{"TF Serving metrics: GET http://tfs:8501/monitoring/prometheus/metrics: 404"},
	}
}

func TestGolden(t *testing.T) {
	r := Build(moment())
	md := r.Markdown()
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"moment.md": []byte(md), "moment.json": js} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/report -update)", err)
		}
		if string(want) != string(got) {
			t.Errorf("%s differs from the golden file (go test ./internal/report -update after checking):\n%s", name, got)
		}
	}
}

func TestContent(t *testing.T) {
	r := Build(moment())
	md := r.Markdown()
	for _, want := range []string{
		"# inferops triage report, 2026-11-24 15:40:02 UTC",
		"- Kafka: group tf_serving_group on ai_input is ERR (Stable, 2 members); total lag 12,210, worst partition 7 with 12,000 (29.5 s behind)",
		"- Kafka warning: 1 partition of ai_input without a committed offset: their 110 records",
		"Total lag counts 110 records on partitions without a committed offset (auto.offset.reset=earliest); 12,100 where the group committed.",
		"- **no_commit**: 1 partition of ai_input",
		"- Model my_model: v1 END; v2 AVAILABLE (p99 48.0 ms)",
		"breaker half-open",
		"1. **[critical] Lag is growing on ai_input**",
		"| 7 | 0 | 100,070 | 88,070 | 12,000 | 29.5 | 410 | 405 | inferops-worker-3 | WARN |",
		"| 11 | 0 | 100,110 | - | 110 no commit | 310 | 410 | 405 | - | STOP |", // unknowns print as "-"
		`breaker open: 5 Predict failures \| deadline exceeded`,                 // a pipe cannot break the table
		"| Predict | 160,000 | 6.00 | 30.0 | 47.0 | 118 |",
		"| kafka.brokers | b1:9092,b2:9092 | file |",
		"## Errors",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "alice@example.com") {
		t.Error("a DLQ payload reached the report")
	}
	js, _ := r.JSON()
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	parts := back["kafka"].(map[string]any)["partitions"].([]any)
	if p11 := parts[11].(map[string]any); len(parts) != 12 || p11["committed"] != nil || p11["lag"] != 110.0 || p11["lag_basis"] != "no_commit" {
		t.Errorf("JSON partitions: %d, p11 %v (want committed null, lag 110, no_commit)", len(parts), p11)
	}
	if k := back["kafka"].(map[string]any); k["committed_lag"] != 12100.0 || len(k["warnings"].([]any)) != 1 {
		t.Errorf("JSON kafka committed_lag %v warnings %v", k["committed_lag"], k["warnings"])
	}
	if back["workers"].(map[string]any)["predict_latency"].(map[string]any)["p99_ms"] != 47.0 {
		t.Errorf("predict p99_ms %v", back["workers"])
	}

	// A rebalance in progress is its own line, with whom it waits for.
	in := moment()
	in.Kafka.GroupState = "PreparingRebalance"
	in.Kafka.Rebalance = &cluster.Rebalance{State: "PreparingRebalance", Seconds: 42, AtLeast: true, Members: 2,
		Awaited: []cluster.Member{{ClientID: "inferops-worker-9", Host: "/10.0.0.9"}}}
	if md := Build(in).Markdown(); !strings.Contains(md, "**Rebalancing** (PreparingRebalance) for at least 42.0 s; nobody consumes until it ends. Awaited: inferops-worker-9 on /10.0.0.9.") {
		t.Errorf("no rebalance line:\n%s", md)
	}

	// A stand-in says so in the summary, the section and the JSON.
	in = moment()
	in.ModelStandIn = true
	sr := Build(in)
	sjs, _ := sr.JSON()
	if md := sr.Markdown(); !strings.Contains(md, "- Model my_model (a stand-in: its outputs are made up): v1 END") ||
		!strings.Contains(md, "(a stand-in: the signature of a real model, outputs made up from the inputs)") || !strings.Contains(string(sjs), `"stand_in": true`) {
		t.Errorf("a stand-in is not called one:\n%s\n%s", md, sjs)
	}
	if strings.Contains(string(js), "stand_in") {
		t.Error("a real model reported as a stand-in")
	}

	empty := Build(Input{Time: t0})
	if len(empty.Summary) != 1 || !strings.Contains(empty.Markdown(), "Nothing was known") {
		t.Errorf("empty input: %v", empty.Summary)
	}
}

func TestSecretsRedacted(t *testing.T) {
	const named = "Named-Report-Secret-11"
	const registered = `Reg"istered<Secret>&22` // JSON escapes ", < > and &
	config.RegisterSecret(registered)
	in := moment()
	in.Secrets = []string{named}
	leak := named + " and " + registered
	in.Host = "host-" + named
	in.Events = append(in.Events, pipeline.Event{Time: t0, Kind: "error", Message: "auth failed: " + leak})
	in.Advice[0].Fix = "set password " + leak
	in.Kafka.Members[0].Host = leak
	in.Config = append(in.Config, Setting{"kafka.sasl.password", "plain-by-key-33", "env"}, Setting{"note", leak, "flag"})
	in.Errors = append(in.Errors, "SASL: "+leak)
	in.DLQ[0].Reason = leak
	in.ModelVersions[0].ErrorMessage, in.ModelVersions[0].ErrorCode = leak, "UNKNOWN"
	in.Worker.Errors[leak] = 1
	r := Build(in)
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js) {
		t.Fatal("redacted JSON is not valid")
	}
	for name, out := range map[string]string{"markdown": r.Markdown(), "json": string(js)} {
		for _, s := range []string{named, registered, `Reg\"istered`, `\u003cSecret`, "plain-by-key-33"} {
			if strings.Contains(out, s) {
				t.Errorf("%s contains %q", name, s)
			}
		}
		if !strings.Contains(out, config.Redacted) {
			t.Errorf("%s shows no redaction", name)
		}
	}
}

func TestPaths(t *testing.T) {
	for in, want := range map[string][2]string{
		"/tmp/incident.md":  {"/tmp/incident.md", "/tmp/incident.json"},
		"/tmp/incident":     {"/tmp/incident.md", "/tmp/incident.json"},
		"report.txt":        {"report.txt", "report.json"},
		"/tmp/a.b/incident": {"/tmp/a.b/incident.md", "/tmp/a.b/incident.json"},
	} {
		md, js := Paths(in)
		if md != want[0] || js != want[1] {
			t.Errorf("Paths(%q) = %q, %q; want %q", in, md, js, want)
		}
	}
}

// TestReportFromEmbeddedBroker writes a report of a real moment: records
// produced to the embedded broker, a snapshot from the lag collector over
// TCP, both files on disk.
func TestReportFromEmbeddedBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Ephemeral: true}).Broker
	kc := cluster.Config{Brokers: []string{b.Addr()}}
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 12; p++ {
		for i := 0; i <= int(p); i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: p, Value: sarama.StringEncoder(`{"id":"x"}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	prod.Close()
	col, err := cluster.NewCollector(kc, pipeline.DefaultInput, pipeline.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	snap, err := col.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	md, js, err := Write(filepath.Join(dir, "incident"), Input{Version: "test", Source: "report test", Kafka: snap})
	if err != nil {
		t.Fatal(err)
	}
	mdText, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing consumes: every record waits, and the report says the group
	// does not exist in its summary.
	for p := 0; p < 12; p++ {
		if want := fmt.Sprintf("| %d | 0 | %d | - | %d no commit |", p, p+1, p+1); !strings.Contains(string(mdText), want) {
			t.Errorf("lag table lacks partition row %q:\n%s", want, mdText)
		}
	}
	if want := `- Kafka warning: group "tf_serving_group" does not exist (no members, no committed offset on ai_input; 78 records wait on ai_input)`; !strings.Contains(string(mdText), want) {
		t.Errorf("summary lacks %q:\n%s", want, mdText)
	}
	var back Report
	jsText, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jsText, &back); err != nil || back.Kafka == nil || len(back.Kafka.Partitions) != 12 {
		t.Fatalf("JSON twin: %v %+v", err, back.Kafka)
	}
	for _, f := range []string{md, js} {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if _, _, err := Write(filepath.Join(dir, "no", "such", "dir", "x.md"), Input{}); err == nil || !strings.Contains(err.Error(), "pick a writable path") {
		t.Errorf("unwritable path: %v", err)
	}
}
