package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// statusBroker starts an embedded broker with records in ai_input and a
// group that committed some of them: partition p holds 10+p records, the
// group committed p on every partition but the last.
func statusBroker(t *testing.T) (*cluster.Broker, map[int32]int64) {
	t.Helper()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Ephemeral: true}).Broker
	cfg := b.ClientConfig()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for p := int32(0); p < 12; p++ {
		for i := 0; i < 10+int(p); i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: p, Value: sarama.StringEncoder("x")})
		}
	}
	clustertest.Produce(t, cfg.Brokers, sc, msgs)

	committed := map[int32]int64{}
	for p := int32(0); p < 11; p++ {
		committed[p] = int64(p)
	}
	clustertest.Commit(t, cfg.Brokers, sc, pipeline.DefaultGroup, pipeline.DefaultInput, committed)
	return b, committed
}

func runInferops(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runInferopsEnv(t, bin, nil, args...)
}

// runInferopsEnv is runInferops with extra environment variables.
func runInferopsEnv(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(serveProcess(t, bin).Env, "INFEROPS_CONFIG=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func testStatusJSON(t *testing.T, bin string) {
	b, committed := statusBroker(t)
	out, errOut, code := runInferops(t, bin, "status", "--brokers", b.Addr(), "--json", "--sample", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"topic", "group", "group_state", "status", "total_lag", "partitions", "members"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	// Partition 11 never committed and nobody owns it: its 21 records are
	// lag, and STOP, so the group is not OK.
	if r["topic"] != pipeline.DefaultInput || r["group"] != pipeline.DefaultGroup || r["status"] != "ERR" || r["group_state"] != "Empty" {
		t.Errorf("header = topic %v group %v status %v state %v", r["topic"], r["group"], r["status"], r["group_state"])
	}
	if r["total_lag"] != 131.0 || r["committed_lag"] != 110.0 { // 10 per committed partition x 11, and p11's 21
		t.Errorf("total_lag = %v committed_lag %v, want 131 and 110", r["total_lag"], r["committed_lag"])
	}
	if ws, _ := r["warnings"].([]any); len(ws) != 1 || ws[0].(map[string]any)["code"] != cluster.WarnNoConsumer {
		t.Errorf("warnings = %v, want one no_consumer", r["warnings"])
	}
	parts := r["partitions"].([]any)
	if len(parts) != 12 {
		t.Fatalf("%d partitions", len(parts))
	}
	for _, pp := range parts {
		p := pp.(map[string]any)
		for _, k := range []string{"partition", "leader", "log_start", "high_watermark", "committed", "lag", "lag_seconds", "produce_rate", "consume_rate", "member"} {
			if _, ok := p[k]; !ok {
				t.Errorf("partition JSON lacks %q: %v", k, p)
			}
		}
		n := int32(p["partition"].(float64))
		if p["high_watermark"] != float64(10+n) {
			t.Errorf("p%d high_watermark %v", n, p["high_watermark"])
		}
		m, ok := committed[n]
		if !ok {
			if p["committed"] != nil || p["lag"] != float64(10+n) || p["lag_basis"] != "no_commit" || p["status"] != "STOP" {
				t.Errorf("p%d never committed: committed %v lag %v basis %v status %v, want null, %d, no_commit, STOP", n, p["committed"], p["lag"], p["lag_basis"], p["status"], 10+n)
			}
			continue
		}
		if p["lag_basis"] != "committed" {
			t.Errorf("p%d lag_basis %v, want committed", n, p["lag_basis"])
		}
		if ls, ok := p["lag_seconds"].(float64); !ok || ls < 0 {
			t.Errorf("p%d lag_seconds %v, want a figure from the record timestamps", n, p["lag_seconds"])
		}
		if p["committed"] != float64(m) || p["lag"] != 10.0 {
			t.Errorf("p%d committed %v lag %v, want %d and 10", n, p["committed"], p["lag"], m)
		}
	}
	if ms, ok := r["members"].([]any); !ok || len(ms) != 0 {
		t.Errorf("members = %v, want []", r["members"])
	}
}

func testStatusText(t *testing.T, bin string) {
	b, _ := statusBroker(t)
	out, errOut, code := runInferops(t, bin, "status", "--brokers", b.Addr(), "--sample", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"topic ai_input  group tf_serving_group  state Empty  status ERR",
		"total lag 131 (21 with no commit, auto.offset.reset=earliest)",
		"warning: group tf_serving_group is Empty: nothing consumes the 131 records waiting on ai_input (1 partition without a committed offset)",
		"PARTITION", "HIGH WATERMARK"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Partition 11: 21 records, nothing committed: committed "-", lag the
	// 21 records from its log start, marked as such.
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "11" {
			row = f
		}
	}
	if len(row) < 8 || row[3] != "21" || row[4] != "-" || strings.Join(row[5:8], " ") != "21 no commit" || row[len(row)-1] != "STOP" {
		t.Errorf("partition 11 row = %v, want hwm 21, committed -, lag 21 no commit, STOP\n%s", row, out)
	}
}

func testStatusErrors(t *testing.T, bin string) {
	b, _ := statusBroker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown topic", []string{"--brokers", b.Addr(), "--input", "nope"}, 1, []string{`"nope" does not exist`, "--input"}},
		{"unreachable", []string{"--brokers", dead}, 1, []string{dead, "--brokers"}},
		{"bad brokers", []string{"--brokers", "no-port"}, 2, []string{"--brokers"}},
		{"negative sample", []string{"--brokers", b.Addr(), "--sample", "-1s"}, 2, []string{"--sample"}},
		{"bad sample value", []string{"--brokers", b.Addr(), "--sample", "banana"}, 2, []string{"-sample", "banana"}},
		{"unknown flag", []string{"--brokers", b.Addr(), "--no-such-flag"}, 2, []string{"no-such-flag"}},
		{"unknown topic via --topic", []string{"--brokers", b.Addr(), "--topic", "nope"}, 1, []string{`"nope" does not exist`}},
		{"--input and --topic differ", []string{"--brokers", b.Addr(), "--input", "ai_input", "--topic", "other"}, 2, []string{"--input", "--topic", `"other"`}},
		{"report into a missing directory", []string{"--brokers", b.Addr(), "--report", "/nonexistent-dir/x/incident.md"}, 2, []string{"--report", "/nonexistent-dir/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runInferops(t, bin, append([]string{"status"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q: %s", w, errOut)
				}
			}
		})
	}
}

func testStatusNoEmbeddedBroker(t *testing.T, bin string) {
	if c, err := net.DialTimeout("tcp", pipeline.DefaultKafkaAddr, time.Second); err == nil {
		c.Close()
		t.Skipf("something listens on %s (a running inferops serve?): cannot test the 'nothing there' hint", pipeline.DefaultKafkaAddr)
	}
	_, errOut, code := runInferops(t, bin, "status")
	if code != 1 || !strings.Contains(errOut, "start it with `inferops serve` (or `make run`), or pass --brokers") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// Embedded mode reads the embedded model server too, and says so.
	if c, err := net.DialTimeout("tcp", pipeline.DefaultGRPCAddr, time.Second); err == nil {
		c.Close()
		return
	}
	if !strings.Contains(errOut, "no embedded model server at "+pipeline.DefaultGRPCAddr) {
		t.Fatalf("embedded mode skipped the model section: stderr %q", errOut)
	}
}

// testStatusTopicAlias: --topic names the same setting as --input; the
// same value in both is fine, and an alias from a higher layer (the command
// line over INFEROPS_INPUT) wins.
func testStatusTopicAlias(t *testing.T, bin string) {
	b, _ := statusBroker(t)
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"--topic alone", nil, []string{"--topic", pipeline.DefaultInput}},
		{"--topic and --input agree", nil, []string{"--topic", pipeline.DefaultInput, "--input", pipeline.DefaultInput}},
		{"--topic over INFEROPS_INPUT", []string{"INFEROPS_INPUT=nope"}, []string{"--topic", pipeline.DefaultInput}},
		{"INFEROPS_TOPIC", []string{"INFEROPS_TOPIC=" + pipeline.DefaultInput}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runInferopsEnv(t, bin, tt.env, append([]string{"status", "--brokers", b.Addr(), "--sample", "0", "--json"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var r struct {
				Topic    string `json:"topic"`
				TotalLag int64  `json:"total_lag"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if r.Topic != pipeline.DefaultInput || r.TotalLag != 131 {
				t.Errorf("topic %q total_lag %d, want %s and 131", r.Topic, r.TotalLag, pipeline.DefaultInput)
			}
		})
	}
}

// testStatusReport: --report writes the Markdown report and its JSON twin
// from the same snapshot status prints, and stdout keeps its normal table.
func testStatusReport(t *testing.T, bin string) {
	b, committed := statusBroker(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "incident") // no extension: .md is added
	out, errOut, code := runInferops(t, bin, "status", "--brokers", b.Addr(), "--topic", pipeline.DefaultInput, "--sample", "100ms", "--report", base)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "PARTITION") || !strings.Contains(out, "total lag 131") {
		t.Errorf("stdout lost its table:\n%s", out)
	}
	md, js := base+".md", base+".json"
	if !strings.Contains(errOut, md) || !strings.Contains(errOut, js) {
		t.Errorf("stderr does not say where the report went: %q", errOut)
	}
	mdText, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# inferops triage report",
		"## Kafka lag: `ai_input` / `tf_serving_group`",
		"| partition | leader | log end | committed | lag |",
		"total lag 131",
		"- Kafka warning: group tf_serving_group is Empty: nothing consumes the 131 records",
		"pipeline.input",
	} {
		if !strings.Contains(string(mdText), want) {
			t.Errorf("report lacks %q:\n%s", want, mdText)
		}
	}
	// One table row per partition; partition 11 never committed: its 21
	// records are lag, marked no commit.
	rows := map[string][]string{}
	for _, line := range strings.Split(string(mdText), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 6 && strings.HasPrefix(line, "| ") {
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows[cells[1]] = cells[1:]
		}
	}
	for p := int32(0); p < 12; p++ {
		row, ok := rows[strconv.Itoa(int(p))]
		if !ok {
			t.Errorf("no lag row for partition %d", p)
			continue
		}
		wantCommitted, wantLag := "-", "21 no commit"
		if c, ok := committed[p]; ok {
			wantCommitted, wantLag = strconv.FormatInt(c, 10), "10"
		}
		if row[2] != strconv.Itoa(10+int(p)) || row[3] != wantCommitted || row[4] != wantLag {
			t.Errorf("partition %d row %v: want log end %d, committed %s, lag %s", p, row, 10+p, wantCommitted, wantLag)
		}
	}
	jsText, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Source string `json:"source"`
		Kafka  struct {
			Topic      string            `json:"topic"`
			TotalLag   int64             `json:"total_lag"`
			Partitions []json.RawMessage `json:"partitions"`
		} `json:"kafka"`
		Config []struct{ Key, Value, Source string } `json:"config"`
	}
	if err := json.Unmarshal(jsText, &r); err != nil {
		t.Fatalf("JSON twin: %v\n%s", err, jsText)
	}
	if r.Kafka.Topic != pipeline.DefaultInput || r.Kafka.TotalLag != 131 || len(r.Kafka.Partitions) != 12 {
		t.Errorf("JSON twin kafka = %s / %d / %d partitions, want ai_input / 131 / 12", r.Kafka.Topic, r.Kafka.TotalLag, len(r.Kafka.Partitions))
	}
	settings := map[string]string{}
	for _, c := range r.Config {
		settings[c.Key] = c.Value + " from " + c.Source
	}
	// --topic is the alias of --input: the report shows pipeline.input as
	// given on the command line.
	for key, want := range map[string]string{"kafka.brokers": b.Addr() + " from flag", "pipeline.input": pipeline.DefaultInput + " from flag", "pipeline.group": pipeline.DefaultGroup + " from default"} {
		if settings[key] != want {
			t.Errorf("config %s = %q, want %q", key, settings[key], want)
		}
	}
	if st, err := os.Stat(md); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("report mode %v (%v), want 0600", st.Mode(), err)
	}
}

// testStatusReportOfUnreachableBroker: a report of a broken pipeline is
// still a report: it names what could not be read, and status exits 1.
func testStatusReportOfUnreachableBroker(t *testing.T, bin string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "down.md")
	_, errOut, code := runInferops(t, bin, "status", "--brokers", dead, "--sample", "0", "--report", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no report written for an unreachable broker: %v\n%s", err, errOut)
	}
	if !strings.Contains(string(b), "## Errors") || !strings.Contains(string(b), dead) {
		t.Errorf("report does not name the unreachable broker %s:\n%s", dead, b)
	}
}

// testStatusReadOnly: status (with --read-only or INFEROPS_READ_ONLY, and
// without) never creates a group or commits: the broker's group list and
// the group's committed offsets are the same before and after.
func testStatusReadOnly(t *testing.T, bin string) {
	b, _ := statusBroker(t)
	help, _, _ := runInferops(t, bin, "status", "--help")
	_, helpErr, _ := runInferops(t, bin, "status", "--help")
	if !strings.Contains(help+helpErr, "--read-only") {
		t.Errorf("status --help does not mention --read-only")
	}
	cfg := b.ClientConfig()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	state := func() (groups []string, offsets map[string]int64) {
		gs, err := admin.ListConsumerGroups()
		if err != nil {
			t.Fatal(err)
		}
		for g := range gs {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		offsets = map[string]int64{}
		for _, g := range groups {
			resp, err := admin.ListConsumerGroupOffsets(g, nil)
			if err != nil {
				t.Fatal(err)
			}
			for topic, parts := range resp.Blocks {
				for p, blk := range parts {
					offsets[fmt.Sprintf("%s/%s/%d", g, topic, p)] = blk.Offset
				}
			}
		}
		return groups, offsets
	}
	groups0, offsets0 := state()
	if len(groups0) != 1 || len(offsets0) == 0 {
		t.Fatalf("setup: groups %v offsets %v, want the one committed group", groups0, offsets0)
	}
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"--read-only", nil, []string{"--read-only"}},
		{"INFEROPS_READ_ONLY", []string{"INFEROPS_READ_ONLY=true"}, nil},
		{"--read-only, a group that does not exist", nil, []string{"--read-only", "--group", "ro_probe_group"}},
		{"no flag, a group that does not exist", nil, []string{"--group", "ro_probe_group_2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runInferopsEnv(t, bin, tt.env, append([]string{"status", "--brokers", b.Addr(), "--sample", "100ms"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			groups, offsets := state()
			if !reflect.DeepEqual(groups, groups0) {
				t.Errorf("groups after status: %v, before: %v", groups, groups0)
			}
			if !reflect.DeepEqual(offsets, offsets0) {
				t.Errorf("committed offsets changed:\nbefore %v\nafter  %v", offsets0, offsets)
			}
		})
	}
}

// TestStatusEvidence: the advice status puts in its report comes from the
// two samples: lag growth above the noise floor while members < partitions
// advises scaling workers; noise and a steady lag advise nothing.
func TestStatusEvidence(t *testing.T) {
	snap := func(lag int64, members int) *cluster.Snapshot {
		s := &cluster.Snapshot{Topic: pipeline.DefaultInput, Group: pipeline.DefaultGroup, TotalLag: lag}
		for p := int32(0); p < 12; p++ {
			s.Partitions = append(s.Partitions, cluster.PartitionLag{Partition: p, Committed: 0})
		}
		for i := 0; i < members; i++ {
			s.Members = append(s.Members, cluster.Member{MemberID: fmt.Sprint(i)})
		}
		return s
	}
	tests := []struct {
		name        string
		first, last *cluster.Snapshot
		sample      time.Duration
		wantRule    string // "" = no advice
		wantTrend   float64
	}{
		{"lag growing, idle partitions", snap(100, 2), snap(700, 2), time.Second, "lag-scale-workers", 600},
		{"lag growing, every partition consumed", snap(100, 12), snap(1100, 12), 2 * time.Second, "lag-add-partitions", 500},
		{"growth below the noise floor", snap(100, 2), snap(150, 2), time.Second, "", 0},
		{"lag falling", snap(700, 2), snap(100, 2), time.Second, "", 0},
		{"one sample", nil, snap(700, 2), 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := statusEvidence(tt.first, tt.last, []string{"b1:9092"}, tt.sample)
			if e.LagTrend != tt.wantTrend {
				t.Errorf("LagTrend = %v, want %v", e.LagTrend, tt.wantTrend)
			}
			var rules []string
			for _, a := range doctor.Advise(e) {
				rules = append(rules, a.Rule)
			}
			switch {
			case tt.wantRule == "" && len(rules) > 0:
				t.Errorf("advice %v, want none", rules)
			case tt.wantRule != "" && (len(rules) != 1 || rules[0] != tt.wantRule):
				t.Errorf("advice %v, want [%s]", rules, tt.wantRule)
			}
		})
	}
}
