package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recoveries summarises how long after each fault the first result came.
func recoveries(tl *tally, ats []time.Time) (avg, worst time.Duration, each []string) {
	var sum time.Duration
	for _, at := range ats {
		d := tl.firstResultAfter(at)
		each = append(each, ms(d))
		if d < 0 {
			worst = -1
			continue
		}
		sum += d
		if worst >= 0 && d > worst {
			worst = d
		}
	}
	if len(ats) > 0 {
		avg = sum / time.Duration(len(ats))
	}
	return avg, worst, each
}

// (a) The worker killed mid-stream, again and again, each time restarted
// at once as systemd would: static membership should hand the partitions
// straight back, and frequent commits keep the replay small.
func TestWorkerSIGKILL(t *testing.T) {
	_, a := serve(t, t.TempDir())
	k := kafkaClient{bootstrap: a.Kafka}
	f := newFeeder(t, k, "kill", featureWidth(t, a.GRPC))
	f.backlog(pick(8000, 100000))
	f.run(pick(300, 1000))
	out := watch(t, k)
	kills := pick(3, 6)
	w := worker(t, a.Kafka, a.GRPC)
	started := time.Now()
	var restarts []time.Time
	for i := 0; i < kills; i++ {
		out.waitResult(t, started, 2*time.Minute)
		time.Sleep(2500 * time.Millisecond) // the reproduction: killed 2.5 s into consuming
		w.kill()
		restarts = append(restarts, time.Now())
		w = worker(t, a.Kafka, a.GRPC)
		started = restarts[len(restarts)-1]
	}
	out.waitResult(t, started, 2*time.Minute)
	time.Sleep(pick(2*time.Second, 10*time.Second))
	f.stop()
	tl := readAll(t, k, "kill", f.sent.Load(), 3*time.Minute)
	if err := w.stop(20 * time.Second); err != nil {
		t.Errorf("SIGTERM after the crashes: %v", err)
	}
	fig := check(t, tl, f)
	avg, worst, each := recoveries(tl, restarts)
	fig.Fault = fmt.Sprintf("worker SIGKILL x%d mid-stream (2.5 s after it resumed), restarted at once", kills)
	fig.Recovery = fmt.Sprintf("%s avg, %s max (kill + restart to the first new result)", ms(avg), ms(worst))
	fig.Note = fmt.Sprintf("%d duplicates per crash", fig.Duplicates/kills)
	t.Logf("recovery after each restart: %s", strings.Join(each, ", "))
	record(t, fig)
}

// (b) The broker and the model server (`serve`) killed mid-stream and
// restarted on the same data dir and ports: the worker rides it out and
// nothing acked is lost.
func TestServeSIGKILL(t *testing.T) {
	dir := t.TempDir()
	ports := []string{"--kafka-addr", freeAddr(t), "--grpc-addr", freeAddr(t), "--rest-addr", freeAddr(t)}
	s, a := serve(t, dir, ports...)
	k := kafkaClient{bootstrap: a.Kafka}
	f := newFeeder(t, k, "serve", featureWidth(t, a.GRPC))
	f.backlog(pick(3000, 30000))
	f.run(pick(300, 1000))
	out := watch(t, k)
	w := worker(t, a.Kafka, a.GRPC)
	out.waitResult(t, time.Now(), 2*time.Minute)
	var backs []time.Time
	kills := pick(1, 3)
	for i := 0; i < kills; i++ {
		time.Sleep(2 * time.Second)
		s.kill()
		time.Sleep(pick(2*time.Second, 10*time.Second))
		s, _ = serve(t, dir, ports...)
		backs = append(backs, time.Now())
		out.waitResult(t, backs[len(backs)-1], 2*time.Minute)
	}
	if w.exited() {
		t.Fatalf("the worker exited while the broker was down: %v", w.waitErr)
	}
	time.Sleep(pick(2*time.Second, 10*time.Second))
	f.stop()
	tl := readAll(t, k, "serve", f.sent.Load(), 3*time.Minute)
	if err := w.stop(20 * time.Second); err != nil {
		t.Errorf("SIGTERM after the broker came back: %v", err)
	}
	fig := check(t, tl, f)
	avg, worst, _ := recoveries(tl, backs)
	fig.Fault = fmt.Sprintf("serve (broker + model server) SIGKILL x%d mid-stream, down %s, restarted on its data dir", kills, pick("2 s", "10 s"))
	fig.Recovery = fmt.Sprintf("%s avg, %s max (restart to the first new result)", ms(avg), ms(worst))
	record(t, fig)
}

// rssBound is what the worker may use while TF Serving is gone and the
// backlog grows: the records must wait in Kafka, not in the heap.
const rssBound = 256 << 20

// (c) The model server gone for a while under load, then back, with the
// broker and the model server as two processes: the breaker stops
// fetching, the backlog waits in Kafka, the worker's memory stays flat.
func TestModelServerOutage(t *testing.T) {
	_, a := serve(t, t.TempDir(), "--model-server=false")
	mdir := t.TempDir()
	mports := []string{"--broker=false", "--grpc-addr", freeAddr(t), "--rest-addr", freeAddr(t)}
	m, ma := serve(t, mdir, mports...)
	k := kafkaClient{bootstrap: a.Kafka}
	f := newFeeder(t, k, "outage", featureWidth(t, ma.GRPC))
	rate := pick(500, 2000)
	f.run(rate)
	out := watch(t, k)
	w := worker(t, a.Kafka, ma.GRPC)
	out.waitResult(t, time.Now(), 2*time.Minute)
	time.Sleep(time.Second)
	before, err := rssBytes(w.pid())
	if err != nil {
		t.Fatal(err)
	}
	m.kill()
	down := time.Now()
	outage := pick(8*time.Second, 60*time.Second)
	var peak int64
	for time.Since(down) < outage {
		if r, err := rssBytes(w.pid()); err == nil && r > peak {
			peak = r
		}
		time.Sleep(250 * time.Millisecond)
	}
	m, _ = serve(t, mdir, mports...)
	back := time.Now()
	out.waitResult(t, back, 2*time.Minute)
	time.Sleep(pick(3*time.Second, 15*time.Second))
	f.stop()
	tl := readAll(t, k, "outage", f.sent.Load(), 3*time.Minute)
	if err := w.stop(20 * time.Second); err != nil {
		t.Errorf("SIGTERM after the outage: %v", err)
	}
	if w.count("circuit breaker closed -> open") == 0 {
		t.Errorf("the worker's breaker never opened during the outage")
	}
	// Nothing can be answered while the model server is away: the backlog
	// waited (in Kafka: the RSS below says it was not in the worker).
	during := 0
	for _, ts := range tl.outTS {
		if ts > down.Add(2*time.Second).UnixMilli() && ts < back.UnixMilli() {
			during++
		}
	}
	if during > 0 {
		t.Errorf("%d results were written while the model server was down", during)
	}
	if peak > rssBound {
		t.Errorf("worker RSS reached %d MiB during the outage, over the %d MiB bound (it was %d MiB before)", peak>>20, rssBound>>20, before>>20)
	}
	fig := check(t, tl, f)
	fig.Fault = fmt.Sprintf("model server gone %s under %d msg/s (separate serve processes), then back", outage, rate)
	fig.Recovery = ms(tl.firstResultAfter(back)) + " (model server back to the first new result)"
	fig.Note = fmt.Sprintf("worker RSS %d MiB before, %d MiB peak while ~%s records waited in Kafka; bound %d MiB",
		before>>20, peak>>20, thousands(int(outage.Seconds())*rate), rssBound>>20)
	record(t, fig)
}
