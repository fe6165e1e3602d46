package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/cluster/clustertest"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/pipeline/stack"
	"github.com/inferops/inferops/pipeline/stack/stacktest"
)

// TestStatusTellsTheTruth runs issue 12's three reproductions through the
// built binary against the embedded broker over TCP: a backlog where the
// group never committed, a mistyped group, a rebalance stuck on a member
// that died without leaving. None of them may read OK.
func TestStatusTellsTheTruth(t *testing.T) {
	bin := inferopsBinary(t)
	t.Run("backlog without commits", func(t *testing.T) { testStatusBacklog(t, bin) })
	t.Run("unknown group", func(t *testing.T) { testStatusUnknownGroup(t, bin) })
	t.Run("stuck rebalance", func(t *testing.T) { testStatusStuckRebalance(t, bin) })
}

// truthBroker is an embedded broker with perPart records on each of
// ai_input's 12 partitions and tf_serving_group committed (caught up) on
// the partitions in done only.
func truthBroker(t *testing.T, perPart int, done ...int32) (*cluster.Broker, *sarama.Config) {
	t.Helper()
	b := stacktest.Start(t, stack.Config{Broker: &cluster.BrokerConfig{}, Ephemeral: true}).Broker
	sc, err := b.ClientConfig().Sarama()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for p := int32(0); p < pipeline.InputPartitions; p++ {
		for i := 0; i < perPart; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: pipeline.DefaultInput, Partition: p, Value: sarama.StringEncoder(`{"id":"x","features":[1]}`)})
		}
	}
	clustertest.Produce(t, b.Addrs(), sc, msgs)
	if len(done) == 0 {
		return b, sc
	}
	offsets := map[int32]int64{}
	for _, p := range done {
		offsets[p] = int64(perPart)
	}
	clustertest.Commit(t, b.Addrs(), sc, pipeline.DefaultGroup, pipeline.DefaultInput, offsets)
	return b, sc
}

type statusJSON struct {
	Status       string `json:"status"`
	GroupState   string `json:"group_state"`
	TotalLag     int64  `json:"total_lag"`
	CommittedLag int64  `json:"committed_lag"`
	ResetPolicy  string `json:"reset_policy"`
	Partitions   []struct {
		Partition int32  `json:"partition"`
		Committed *int64 `json:"committed"`
		Lag       *int64 `json:"lag"`
		LagBasis  string `json:"lag_basis"`
		Status    string `json:"status"`
	} `json:"partitions"`
	Rebalance *struct {
		State   string  `json:"state"`
		Seconds float64 `json:"seconds"`
		AtLeast bool    `json:"at_least"`
		Awaited []struct {
			ClientID string `json:"client_id"`
			Host     string `json:"host"`
		} `json:"awaited"`
	} `json:"rebalance"`
	Warnings []cluster.Warning `json:"warnings"`
}

func statusOf(t *testing.T, bin string, args ...string) (statusJSON, string) {
	t.Helper()
	out, errOut, code := runInferops(t, bin, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("status --json exit %d: %s", code, errOut)
	}
	var r statusJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return r, out
}

func warningOf(r statusJSON, code string) string {
	for _, w := range r.Warnings {
		if w.Code == code {
			return w.Message
		}
	}
	return ""
}

// testStatusBacklog: the workers committed on 4 partitions and were killed
// before committing on the other 8, whose 800 records wait. Before issue 12
// this read "total lag 0 ... OK".
func testStatusBacklog(t *testing.T, bin string) {
	b, _ := truthBroker(t, 100, 0, 1, 2, 3)
	r, _ := statusOf(t, bin, "--brokers", b.Addr(), "--sample", "200ms")
	if r.TotalLag != 800 || r.CommittedLag != 0 || r.ResetPolicy != "earliest" {
		t.Errorf("total_lag %d committed_lag %d reset %q, want 800, 0, earliest", r.TotalLag, r.CommittedLag, r.ResetPolicy)
	}
	if r.Status == "OK" || r.GroupState != "Empty" {
		t.Errorf("status %q state %q while 800 records wait, want not OK and Empty", r.Status, r.GroupState)
	}
	for _, p := range r.Partitions {
		switch {
		case p.Partition < 4:
			if p.LagBasis != "committed" || p.Lag == nil || *p.Lag != 0 || p.Status != "OK" {
				t.Errorf("p%d: basis %s lag %v status %s, want committed, 0, OK", p.Partition, p.LagBasis, p.Lag, p.Status)
			}
		default:
			if p.LagBasis != "no_commit" || p.Committed != nil || p.Lag == nil || *p.Lag != 100 || p.Status != "STOP" {
				t.Errorf("p%d: basis %s committed %v lag %v status %s, want no_commit, null, 100, STOP", p.Partition, p.LagBasis, p.Committed, p.Lag, p.Status)
			}
		}
	}
	if w := warningOf(r, cluster.WarnNoConsumer); !strings.Contains(w, "nothing consumes the 800 records waiting on ai_input (8 partitions without a committed offset)") {
		t.Errorf("no_consumer warning %q; all: %+v", w, r.Warnings)
	}

	out, errOut, code := runInferops(t, bin, "status", "--brokers", b.Addr(), "--sample", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"status ERR", "total lag 800 (800 with no commit, auto.offset.reset=earliest)",
		"warning: group tf_serving_group is Empty: nothing consumes the 800 records", "100 no commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

// testStatusUnknownGroup: a typo in --group. Before issue 12: "state Dead
// status OK total lag 0" and no note.
func testStatusUnknownGroup(t *testing.T, bin string) {
	b, _ := truthBroker(t, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	r, _ := statusOf(t, bin, "--brokers", b.Addr(), "--group", "tf_serving_grp", "--sample", "0")
	if r.Status != "NOTFOUND" || r.GroupState != "Dead" {
		t.Errorf("status %q state %q, want NOTFOUND and Dead", r.Status, r.GroupState)
	}
	w := warningOf(r, cluster.WarnGroupNotFound)
	for _, want := range []string{`group "tf_serving_grp" does not exist`, "120 records wait on ai_input", "groups with commits on ai_input: tf_serving_group (set --group)"} {
		if !strings.Contains(w, want) {
			t.Errorf("group_not_found warning %q lacks %q", w, want)
		}
	}
	out, _, code := runInferops(t, bin, "status", "--brokers", b.Addr(), "--group", "tf_serving_grp", "--sample", "0")
	if code != 0 || !strings.Contains(out, "state Dead  status NOTFOUND") || strings.Contains(out, "status OK") ||
		!strings.Contains(out, `warning: group "tf_serving_grp" does not exist`) || !strings.Contains(out, "tf_serving_group (set --group)") {
		t.Errorf("exit %d, text:\n%s", code, out)
	}
}

// testStatusStuckRebalance: a worker killed without leaving the group
// (kill -9) and a new one starting: the group waits in PreparingRebalance
// for the dead member's session to time out, and nothing consumes.
func testStatusStuckRebalance(t *testing.T, bin string) {
	b, sc := truthBroker(t, 10)
	clustertest.VanishedMember(t, b.Addrs(), sc, pipeline.DefaultGroup, pipeline.DefaultInput, "worker-dead", 20*time.Second)
	clustertest.Member(t, b.Addrs(), sc, pipeline.DefaultGroup, pipeline.DefaultInput, "worker-new")
	// The new member's join puts the group in PreparingRebalance within a
	// heartbeat; wait for status to see it.
	deadline := time.Now().Add(10 * time.Second)
	var r statusJSON
	for {
		r, _ = statusOf(t, bin, "--brokers", b.Addr(), "--sample", "1s")
		if r.Rebalance != nil || time.Now().After(deadline) {
			break
		}
	}
	rb := r.Rebalance
	if rb == nil || rb.State != "PreparingRebalance" || !rb.AtLeast || rb.Seconds < 0.9 {
		t.Fatalf("rebalance %+v, want PreparingRebalance for at least the 1 s between samples", rb)
	}
	var awaited []string
	for _, m := range rb.Awaited {
		awaited = append(awaited, m.ClientID)
	}
	if !strings.Contains(strings.Join(awaited, ","), "worker-dead") {
		t.Errorf("awaited %v, want worker-dead among them", awaited)
	}
	if w := warningOf(r, cluster.WarnRebalancing); !strings.Contains(w, "has been rebalancing for at least 1s (PreparingRebalance)") || !strings.Contains(w, "worker-dead on ") {
		t.Errorf("rebalancing warning %q", w)
	}
	if r.Status == "OK" {
		t.Errorf("status OK during a rebalance with records waiting")
	}
	out, _, _ := runInferops(t, bin, "status", "--brokers", b.Addr(), "--sample", "1s")
	for _, want := range []string{"state PreparingRebalance", "rebalancing: PreparingRebalance for at least 1", "worker-dead on ", "warning: group tf_serving_group has been rebalancing for at least"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}
