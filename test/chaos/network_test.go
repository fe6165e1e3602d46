package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// toxic is one network fault, as toxiproxy's JSON describes it.
type toxic struct {
	what string // for the table
	json string
}

var toxicsTried = []toxic{
	{"+300 ms latency", `{"name":"fault","type":"latency","stream":"downstream","attributes":{"latency":300,"jitter":50}}`},
	// timeout 0: the connection stays open and every byte is dropped.
	{"stalled connection", `{"name":"fault","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`},
	{"connection resets", `{"name":"fault","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`},
}

// proxies is toxiproxy's proxy package run in the test process, with its
// byte counters, so the test can tell the worker's traffic really went
// through it.
type proxies struct {
	srv     *toxiproxy.ApiServer
	metrics *collectors.ProxyMetricCollectors
	reg     *prometheus.Registry
}

func newProxies(t *testing.T) *proxies {
	m := toxiproxy.NewMetricsContainer(prometheus.NewRegistry())
	pm := collectors.NewProxyMetricCollectors()
	m.ProxyMetrics = pm
	reg := prometheus.NewRegistry()
	reg.MustRegister(pm.Collectors()...)
	return &proxies{srv: toxiproxy.NewServer(m, zerolog.Nop()), metrics: pm, reg: reg}
}

func (ps *proxies) start(t *testing.T, name, upstream string) *toxiproxy.Proxy {
	t.Helper()
	p := toxiproxy.NewProxy(ps.srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return p
}

// bytes is what a proxy forwarded, both ways.
func (ps *proxies) bytes(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := ps.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if !strings.HasSuffix(mf.GetName(), "proxy_received_bytes_total") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "proxy" && l.GetValue() == name {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// (d) The network between the worker and the broker, and between the
// worker and TF Serving, goes bad in turn: added latency, a stalled
// connection, resets. The broker advertises the proxy, so every
// connection the worker opens goes through it; the test's own clients
// dial the broker directly.
func TestNetworkFaults(t *testing.T) {
	if !hasFlag("serve", "kafka-advertised-addr") {
		t.Skip("the binary under test has no --kafka-advertised-addr")
	}
	ps := newProxies(t)
	kp := ps.start(t, "kafka", "127.0.0.1:1") // upstream once the broker listens
	_, a := serve(t, t.TempDir(), "--kafka-advertised-addr", kp.Listen)
	if a.Kafka != kp.Listen || a.KafkaListen == kp.Listen {
		t.Fatalf("serve advertises %s and listens on %s, want it to advertise the proxy %s", a.Kafka, a.KafkaListen, kp.Listen)
	}
	if err := kp.Update(&toxiproxy.Proxy{Listen: kp.Listen, Upstream: a.KafkaListen, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	tp := ps.start(t, "tfserving", a.GRPC)

	k := kafkaClient{bootstrap: a.KafkaListen, redirect: map[string]string{kp.Listen: a.KafkaListen}}
	f := newFeeder(t, k, "net", featureWidth(t, a.GRPC))
	f.backlog(pick(2000, 20000))
	f.run(pick(300, 1000))
	out := watch(t, k)
	w := worker(t, kp.Listen, tp.Listen)
	out.waitResult(t, time.Now(), 2*time.Minute)

	hold := pick(2*time.Second, 15*time.Second)
	type tried struct {
		where, what string
		healed      time.Time
	}
	var all []tried
	for _, target := range []struct {
		where string
		p     *toxiproxy.Proxy
	}{{"worker<->broker", kp}, {"worker<->TF Serving", tp}} {
		for _, tx := range toxicsTried {
			if _, err := target.p.Toxics.AddToxicJson(strings.NewReader(tx.json)); err != nil {
				t.Fatalf("%s %s: %v", target.where, tx.what, err)
			}
			time.Sleep(hold)
			if err := target.p.Toxics.RemoveToxic(context.Background(), "fault"); err != nil {
				t.Fatal(err)
			}
			healed := time.Now()
			all = append(all, tried{target.where, tx.what, healed})
			out.waitResult(t, healed, 2*time.Minute)
			time.Sleep(pick(500*time.Millisecond, 3*time.Second))
		}
	}
	if w.exited() {
		t.Fatalf("the worker exited during the network faults: %v", w.waitErr)
	}
	f.stop()
	tl := readAll(t, k, "net", f.sent.Load(), 3*time.Minute)
	if err := w.stop(20 * time.Second); err != nil {
		t.Errorf("SIGTERM after the network faults: %v", err)
	}
	// The worker's Kafka and gRPC traffic went through the proxies: each
	// carried at least the 2 KB records it fetched, or the results' rows.
	kb, tb := ps.bytes(t, "kafka"), ps.bytes(t, "tfserving")
	if min := float64(tl.totalIn()) * 1000; kb < min {
		t.Errorf("the Kafka proxy forwarded %.0f bytes for %d records: the worker bypassed it", kb, tl.totalIn())
	}
	if tb < float64(tl.totalIn())*50 {
		t.Errorf("the TF Serving proxy forwarded %.0f bytes for %d records: the worker bypassed it", tb, tl.totalIn())
	}
	fig := check(t, tl, f)
	for _, where := range []string{"worker<->broker", "worker<->TF Serving"} {
		var parts []string
		for _, x := range all {
			if x.where == where {
				parts = append(parts, fmt.Sprintf("%s %s", x.what, ms(tl.firstResultAfter(x.healed))))
			}
		}
		row := fig
		row.Fault = fmt.Sprintf("network %s through toxiproxy: +300 ms latency, a stalled connection, resets, %s each", where, hold)
		row.Recovery = strings.Join(parts, "; ") + " (healed to the first new result)"
		if where == "worker<->TF Serving" {
			row.Note = "same run as the row above"
		}
		record(t, row)
	}
	t.Logf("through the proxies: Kafka %.1f MB, TF Serving %.1f MB", kb/1e6, tb/1e6)
}
