package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/modelserver"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestWorkerCommand runs `inferops worker` as a process against the embedded
// broker and model server on random ports: it serves every record, exposes
// inferops_worker_* metrics, logs JSON, and on SIGTERM drains and exits 0
// within 10 s with everything committed.
func TestWorkerCommand(t *testing.T) {
	bin := inferopsBinary(t)
	st := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Models: &modelserver.Config{RESTAddr: "-"}})

	kc := st.Kafka()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	var msgs []*sarama.ProducerMessage
	feats := "[" + strings.TrimSuffix(strings.Repeat("0.5,", 32), ",") + "]"
	for i := 0; i < n; i++ {
		v := `{"id":"w` + strconv.Itoa(i) + `","features":` + feats + `}`
		if i == 7 {
			v = `{"id":"w7","features":[1,2]}` // wrong width: the DLQ
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Key: sarama.StringEncoder("w" + strconv.Itoa(i)), Value: sarama.StringEncoder(v)})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	_ = prod.Close()

	cmd := serveProcess(t, bin) // for its isolated environment
	cmd.Args = []string{bin, "worker", "--brokers", st.Addrs.Kafka, "--tfserving", st.Addrs.GRPC, "--workers", "2",
		"--metrics-addr", "127.0.0.1:0", "--group", "cmd_test_group"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	metricsURL := make(chan string, 1)
	logDone := make(chan []map[string]any, 1)
	go func() {
		var lines []map[string]any
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("stderr line is not JSON: %s", sc.Text())
				continue
			}
			lines = append(lines, m)
			if m["msg"] == "metrics listening" {
				metricsURL <- m["addr"].(string)
			}
		}
		logDone <- lines
	}()
	var url string
	select {
	case url = <-metricsURL:
	case <-time.After(30 * time.Second):
		t.Fatal("no 'metrics listening' log line")
	}
	// Poll the metrics until every record is answered.
	deadline := time.Now().Add(60 * time.Second)
	for {
		body := get(t, url)
		if metricValue(body, "inferops_worker_produced_total") == n-1 && metricValue(body, "inferops_worker_dlq_total") == 1 {
			for _, name := range []string{"inferops_worker_predict_seconds_bucket", "inferops_worker_e2e_seconds_count", "inferops_worker_lag", "inferops_worker_breaker_state", "inferops_worker_workers"} {
				if !strings.Contains(body, name) {
					t.Errorf("metrics lack %s", name)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not served in time; metrics:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not exit within 15 s of SIGTERM")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("drain took %v, want <= 10 s", d)
	}
	lines := <-logDone
	sawDrain := false
	for _, l := range lines {
		sawDrain = sawDrain || strings.HasPrefix(l["msg"].(string), "draining")
	}
	if !sawDrain {
		t.Error("no drain log line")
	}
	// Everything answered was committed before the worker left.
	admin, err := sarama.NewClusterAdmin(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offs, err := admin.ListConsumerGroupOffsets("cmd_test_group", nil)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, blocks := range offs.Blocks {
		for _, blk := range blocks {
			if blk.Offset > 0 {
				committed += blk.Offset
			}
		}
	}
	if committed != n {
		t.Fatalf("committed %d records' offsets, want %d", committed, n)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue reads an unlabelled sample from Prometheus text.
func metricValue(body, name string) int {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f)
		}
	}
	return -1
}

// --instance becomes a group.instance.id, which Kafka restricts; a bad one
// is a usage error naming the flag, from the flag, the environment or the
// config file alike, before anything connects.
func TestWorkerInstanceValidated(t *testing.T) {
	var out, errOut strings.Builder
	err := runCmd(t.Context(), "worker", []string{"--instance", "web 3/a", "--brokers", "127.0.0.1:1", "--tfserving", "127.0.0.1:1"}, &out, &errOut)
	if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--instance") {
		t.Fatalf("worker --instance 'web 3/a': %v, want a usage error naming --instance", err)
	}
	t.Setenv("INFEROPS_INSTANCE", "ok-name")
	err = runCmd(t.Context(), "worker", []string{"--brokers", "127.0.0.1:1", "--tfserving", "127.0.0.1:1"}, &out, &errOut)
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("a good INFEROPS_INSTANCE must get past validation (and fail to connect): %v", err)
	}
}
