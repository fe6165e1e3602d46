package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/inferops/inferops/cluster"
)

// statusBroker starts an embedded broker with records in ai_input and a
// group that committed some of them: partition p holds 10+p records, the
// group committed p on every partition but the last.
func statusBroker(t *testing.T) (*cluster.Broker, map[int32]int64) {
	t.Helper()
	b, err := cluster.StartBroker(context.Background(), cluster.BrokerConfig{Addr: "127.0.0.1:0", Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cfg := b.ClientConfig()
	sc, err := cfg.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for p := int32(0); p < 12; p++ {
		for i := 0; i < 10+int(p); i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: cluster.TopicInput, Partition: p, Value: sarama.StringEncoder("x")})
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	coord, err := client.Coordinator(cluster.GroupInfer)
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: cluster.GroupInfer, ConsumerGroupGeneration: -1, RetentionTime: -1}
	committed := map[int32]int64{}
	for p := int32(0); p < 11; p++ {
		committed[p] = int64(p)
		req.AddBlock(cluster.TopicInput, p, int64(p), 0, "")
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		t.Fatal(err)
	}
	for p, e := range resp.Errors[cluster.TopicInput] {
		if !errors.Is(e, sarama.ErrNoError) {
			t.Fatalf("commit p%d: %v", p, e)
		}
	}
	return b, committed
}

func runInferops(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = serveCmd(t, bin).Env
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
	if r["topic"] != cluster.TopicInput || r["group"] != cluster.GroupInfer || r["status"] != "OK" || r["group_state"] != "Empty" {
		t.Errorf("header = topic %v group %v status %v state %v", r["topic"], r["group"], r["status"], r["group_state"])
	}
	if r["total_lag"] != 110.0 { // 10 per committed partition x 11
		t.Errorf("total_lag = %v, want 110", r["total_lag"])
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
			if p["committed"] != nil || p["lag"] != nil {
				t.Errorf("p%d never committed: committed %v lag %v, want null", n, p["committed"], p["lag"])
			}
			continue
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
	for _, want := range []string{"topic ai_input  group tf_serving_group  state Empty  status OK", "total lag 110", "PARTITION", "HIGH WATERMARK"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Partition 11: 21 records, nothing committed: committed and lag "-".
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "11" {
			row = f
		}
	}
	if len(row) < 7 || row[3] != "21" || row[4] != "-" || row[5] != "-" {
		t.Errorf("partition 11 row = %v, want hwm 21, committed -, lag -\n%s", row, out)
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
	if c, err := net.DialTimeout("tcp", cluster.DefaultEmbeddedAddr, time.Second); err == nil {
		c.Close()
		t.Skipf("something listens on %s (a running inferops serve?): cannot test the 'nothing there' hint", cluster.DefaultEmbeddedAddr)
	}
	_, errOut, code := runInferops(t, bin, "status")
	if code != 1 || !strings.Contains(errOut, "start it with `inferops serve` (or `make run`), or pass --brokers") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestPartitionList(t *testing.T) {
	tests := []struct {
		in   []int32
		want string
	}{
		{nil, "-"},
		{[]int32{4}, "4"},
		{[]int32{0, 1, 2, 3}, "0-3"},
		{[]int32{0, 1, 2, 3, 7, 9, 10}, "0-3,7,9-10"},
	}
	for _, tt := range tests {
		if got := partitionList(tt.in); got != tt.want {
			t.Errorf("partitionList(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
