package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/infer/demo"
	"github.com/inferops/inferops/pipeline"
)

var soakFor = flag.Duration("soak", 0, "run TestSoak for this long (make soak DURATION=30m); 0 skips it")

// Soak bounds: what "flat" means between the start (after a warm-up) and
// the middle and the end of a soak. The worker's RSS may wander with the
// GC, so it gets a relative and an absolute slack; goroutines and fds are
// counts that must not creep. A GC pause from gctrace is wall-clock time,
// which a loaded 2-core machine stretches (a compile next to a soak took
// a window's p99 from 3 to 14 ms), so it may grow 4x over the start or to
// 20 ms; a heap that really grew would pass that in every window. serve's heap is not flat by design until its
// topics are full: the embedded broker (kfake) keeps an index entry of
// about 90 bytes in memory per stored batch (a heap profile puts 90% of
// its in-use heap in kfake's pushBatch), dropped only when retention
// (64 MiB per partition) frees a segment, so serve gets an absolute bound
// instead, far above what 27 full partitions' index takes and below the
// 1 GiB soft memory limit serve sets.
const (
	soakServeRSS    = 512 << 20
	soakRSSFactor   = 1.5
	soakRSSSlack    = 32 << 20
	soakGoroutines  = 25 // more than at the start
	soakFDs         = 16
	soakGCP99Factor = 4.0
	soakGCP99Floor  = 20 * time.Millisecond
)

// sample is one look at a process.
type sample struct {
	At         time.Duration
	RSS        int64
	Threads    int
	FDs        int
	Goroutines int     // -1 without /metrics
	GCPauseP99 float64 // seconds, over the window since the previous sample; -1 unknown
	GCs        int     // collections in that window
}

func procSample(pid int) (sample, error) {
	s := sample{Goroutines: -1, GCPauseP99: -1}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.RSS = n << 10
		case "Threads":
			s.Threads = int(n)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	return s, nil
}

// scrape reads go_goroutines from the worker's /metrics.
func scrape(url string, s *sample) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			s.Goroutines = int(n)
		}
	}
	return sc.Err()
}

// gcPauses reads the stop-the-world pauses of each collection from
// GODEBUG=gctrace=1 lines: "gc 7 @1.2s 1%: 0.021+1.3+0.004 ms clock, ..."
// pauses for the first and the last of the three clock phases. (The Go
// collector's go_gc_pauses_seconds histogram has decade buckets: 0.9 ms,
// 10.5 ms, 117 ms, too coarse for a p99 worth comparing.)
func gcPauses(lines []string) []float64 {
	var out []float64
	for _, l := range lines {
		if !strings.HasPrefix(l, "gc ") {
			continue
		}
		_, rest, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		clock, _, ok := strings.Cut(rest, " ms clock")
		if !ok {
			continue
		}
		ph := strings.Split(clock, "+")
		if len(ph) != 3 {
			continue
		}
		a, err1 := strconv.ParseFloat(ph[0], 64)
		c, err2 := strconv.ParseFloat(ph[2], 64)
		if err1 == nil && err2 == nil {
			out = append(out, (a+c)/1000)
		}
	}
	return out
}

func p99(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(math.Ceil(0.99*float64(len(s))))-1]
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// TestSoak runs the embedded stack (`serve`) and a long-lived `worker
// --metrics-addr` under demo traffic with bursts and 1% malformed records,
// and around them, in a loop: a second worker process that joins the group
// with 1..4 members and another model version each time (so partitions
// move back and forth and the model server serves every version and
// label), leaving by SIGTERM or SIGKILL in turn; and `inferops perf` runs
// against the same stack. It prints RSS, threads, fds, goroutines and GC
// pause p99 (from GODEBUG=gctrace=1) of serve and the worker at the start (after a warm-up), the
// middle and the end, and fails when they do not stay within the bounds
// above.
func TestSoak(t *testing.T) {
	if *soakFor <= 0 {
		t.Skip("make soak DURATION=30m runs it")
	}
	total := *soakFor
	warm := min(90*time.Second, total/6)
	srv, a := serveEnv(t, []string{"GODEBUG=gctrace=1"}, t.TempDir())
	schema, err := pipeline.NewSchema(signature(t, a.GRPC).InputSpecs(), pipeline.SchemaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := demo.Start(context.Background(), demo.Config{Kafka: cluster.Config{Brokers: []string{a.Kafka}}, Rate: 400, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	w := startEnv(t, "worker", []string{"GODEBUG=gctrace=1"}, "worker", "--brokers", a.Kafka, "--tfserving", a.GRPC,
		"--workers", "4", "--instance", "soak", "--metrics-addr", "127.0.0.1:0")
	w.waitLine(time.Minute, "worker running")
	var metricsURL string
	var ml struct{ Addr string }
	if json.Unmarshal([]byte(w.waitLine(10*time.Second, "metrics listening")), &ml) != nil || ml.Addr == "" {
		t.Fatal("no metrics address in the worker's log")
	}
	metricsURL = ml.Addr

	began := time.Now()
	type point struct {
		name           string
		serve, workerS sample
	}
	var points []point
	gcFrom, sgcFrom := 0, 0
	take := func(name string) {
		ss, err := procSample(srv.pid())
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
		ws, err := procSample(w.pid())
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
		if err := scrape(metricsURL, &ws); err != nil {
			t.Fatalf("worker /metrics: %v", err)
		}
		var lines []string
		lines, gcFrom = w.linesFrom(gcFrom)
		ps := gcPauses(lines)
		ws.GCPauseP99, ws.GCs = p99(ps), len(ps)
		lines, sgcFrom = srv.linesFrom(sgcFrom)
		ps = gcPauses(lines)
		ss.GCPauseP99, ss.GCs = p99(ps), len(ps)
		ss.At, ws.At = time.Since(began), time.Since(began)
		points = append(points, point{name, ss, ws})
		t.Logf("%s at %s: serve RSS %s fds %d threads %d GC pause p99 %.3f ms; worker RSS %s fds %d threads %d goroutines %d GC pause p99 %.3f ms of %d GCs",
			name, ws.At.Round(time.Second), mib(ss.RSS), ss.FDs, ss.Threads, ss.GCPauseP99*1000, mib(ws.RSS), ws.FDs, ws.Threads, ws.Goroutines, ws.GCPauseP99*1000, ws.GCs)
	}
	take("boot")

	versions := []string{"latest", "1", "2", "label:canary", "label:stable"}
	rates := []float64{400, 1200, 250, 800}
	var cycles, perfRuns, churnKills int
	var perfFails []string
	next := []string{"start", "middle"}
	at := []time.Duration{warm, total / 2}
	for i := 0; time.Since(began) < total; i++ {
		if len(at) > 0 && time.Since(began) >= at[0] {
			take(next[0])
			next, at = next[1:], at[1:]
		}
		cycles++
		gen.SetRate(rates[i%len(rates)])
		churn := start(t, "churn-worker", "worker", "--brokers", a.Kafka, "--tfserving", a.GRPC,
			"--instance", "soak-churn", "--workers", strconv.Itoa(1+i%4), "--target-version", versions[i%len(versions)], "--log-level", "warn")
		time.Sleep(min(15*time.Second, time.Until(began.Add(total))))
		if i%2 == 0 && time.Until(began.Add(total)) > 20*time.Second {
			perfRuns++
			out, err := exec.Command(bin, "perf", "--config=", "--brokers", a.Kafka, "--tfserving", a.GRPC,
				"--scenario", "small", "--rate", "300", "--duration", "8s", "--history", t.TempDir()+"/perf-history.jsonl", "--json").CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1 = the SLO verdict, fine on a loaded box
				perfFails = append(perfFails, fmt.Sprintf("%v: %.200s", err, out))
			}
		}
		if i%2 == 0 {
			if err := churn.stop(20 * time.Second); err != nil {
				t.Errorf("churn worker SIGTERM: %v", err)
			}
		} else {
			churn.kill()
			churnKills++
		}
		if w.exited() || srv.exited() {
			t.Fatalf("a long-lived process exited: worker %v, serve %v", w.waitErr, srv.waitErr)
		}
	}
	for len(next) > 0 { // a run too short for the checkpoints
		take(next[0])
		next = next[1:]
	}
	take("end")
	if len(perfFails) > 0 {
		t.Errorf("%d of %d perf runs could not run: %v", len(perfFails), perfRuns, perfFails)
	}
	if st := gen.Stats(); st.Sent == 0 {
		t.Errorf("the demo traffic sent nothing")
	}
	if err := w.stop(20 * time.Second); err != nil {
		t.Errorf("worker SIGTERM at the end: %v", err)
	}
	if w.count(`"msg":"worker pool closed"`) == 0 {
		t.Errorf("the worker did not drain at the end")
	}

	fmt.Printf("\nSoak %s: %d cycles (a churn worker with 1-4 members and another model version each, %d of them SIGKILLed; %d perf runs), demo traffic 250-1200 msg/s with bursts and 1%% malformed\n\n",
		total, cycles, churnKills, perfRuns)
	fmt.Println("| process | point | at | RSS | threads | fds | goroutines | GC pause p99 (GCs since the previous point) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	var base point
	for _, p := range points {
		if p.name == "start" {
			base = p
		}
		for _, x := range []struct {
			name string
			s    sample
		}{{"serve", p.serve}, {"worker", p.workerS}} {
			g, gc := "-", "-"
			if x.s.Goroutines >= 0 {
				g = strconv.Itoa(x.s.Goroutines)
			}
			if x.s.GCPauseP99 >= 0 {
				gc = fmt.Sprintf("%.3f ms (%d)", x.s.GCPauseP99*1000, x.s.GCs)
			}
			fmt.Printf("| %s | %s | %s | %s | %d | %d | %s | %s |\n", x.name, p.name, x.s.At.Round(time.Second), mib(x.s.RSS), x.s.Threads, x.s.FDs, g, gc)
		}
	}
	fmt.Println()
	for _, p := range points {
		if p.name != "middle" && p.name != "end" {
			continue
		}
		for _, x := range []struct {
			name      string
			base, cur sample
		}{{"serve", base.serve, p.serve}, {"worker", base.workerS, p.workerS}} {
			if x.name == "serve" {
				if x.cur.RSS > soakServeRSS {
					t.Errorf("serve RSS at the %s %s > %s", p.name, mib(x.cur.RSS), mib(soakServeRSS))
				}
			} else if lim := int64(float64(x.base.RSS)*soakRSSFactor) + soakRSSSlack; x.cur.RSS > lim {
				t.Errorf("%s RSS at the %s %s > %s (start %s x %.1f + %s)", x.name, p.name, mib(x.cur.RSS), mib(lim), mib(x.base.RSS), soakRSSFactor, mib(soakRSSSlack))
			}
			if x.cur.FDs > x.base.FDs+soakFDs {
				t.Errorf("%s open fds at the %s %d > start %d + %d", x.name, p.name, x.cur.FDs, x.base.FDs, soakFDs)
			}
			if x.cur.Goroutines >= 0 && x.cur.Goroutines > x.base.Goroutines+soakGoroutines {
				t.Errorf("%s goroutines at the %s %d > start %d + %d", x.name, p.name, x.cur.Goroutines, x.base.Goroutines, soakGoroutines)
			}
			if x.cur.GCPauseP99 >= 0 && x.base.GCPauseP99 >= 0 {
				lim := max(x.base.GCPauseP99*soakGCP99Factor, soakGCP99Floor.Seconds())
				if x.cur.GCPauseP99 > lim {
					t.Errorf("%s GC pause p99 at the %s %.2f ms > %.2f ms", x.name, p.name, x.cur.GCPauseP99*1000, lim*1000)
				}
			}
		}
	}
}
