package fleet

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/pipeline"
)

// Status is a View for people and scripts: what `inferops fleet status`
// prints (and --json emits), the "fleet" object of `inferops status
// --json` and the fleet section of the triage report. Latency is in
// milliseconds, merged over the live instances.
type Status struct {
	Time      time.Time        `json:"time"`
	Group     string           `json:"group"`
	Desired   *Desired         `json:"desired,omitempty"`
	Asks      string           `json:"asks"` // the desired state in words
	Totals    Totals           `json:"totals"`
	Predict   Latency          `json:"predict_latency"`
	EndToEnd  Latency          `json:"end_to_end_latency"`
	Versions  []VersionStatus  `json:"versions,omitempty"`
	Instances []InstanceStatus `json:"instances"`
	Events    []pipeline.Event `json:"events,omitempty"` // the newest, oldest first
	Bad       int              `json:"unreadable_records,omitempty"`
}

// VersionStatus is one model version over the fleet.
type VersionStatus struct {
	Version   int64   `json:"version"`
	Rows      uint64  `json:"rows"`
	Instances int     `json:"serving_instances"` // live instances it served rows on in the window
	Predict   Latency `json:"predict_latency"`
	EndToEnd  Latency `json:"end_to_end_latency"`
}

// InstanceStatus is one instance.
type InstanceStatus struct {
	Instance     string     `json:"instance"`
	State        string     `json:"state"` // live, lost, duplicate
	AgeSeconds   float64    `json:"age_seconds"`
	Host         string     `json:"host"`
	PID          int        `json:"pid"`
	Inferops     string     `json:"inferops"`
	Started      time.Time  `json:"started"`
	ControlState string     `json:"control_state"` // applied, pending, failed, pinned, none
	Control      Control    `json:"control"`
	Workers      int        `json:"workers"`
	Members      []Member   `json:"members,omitempty"`
	InRate       float64    `json:"in_rate"`
	OutRate      float64    `json:"out_rate"`
	DLQ          uint64     `json:"dlq"`
	Lag          int64      `json:"lag"`
	Breaker      string     `json:"breaker"`
	Paused       bool       `json:"paused"`
	Target       string     `json:"target"`
	Serving      []int64    `json:"serving"` // versions that served rows in the window
	Predict      Latency    `json:"predict_latency"`
	EndToEnd     Latency    `json:"end_to_end_latency"`
	TFServing    []TFHost   `json:"tfserving_hosts,omitempty"`
	Others       []Identity `json:"other_processes,omitempty"` // StateDuplicate: who else publishes under the name
}

// maxStatusEvents is how many fleet events a Status carries.
const maxStatusEvents = 20

// Status summarises v.
func (v View) Status() Status {
	s := Status{Time: v.Time.UTC(), Group: v.Group, Desired: v.Desired, Asks: v.Desired.Summary(), Totals: v.Totals,
		Predict: v.Predict.Summary(), EndToEnd: v.EndToEnd.Summary(), Bad: v.Bad, Instances: []InstanceStatus{}}
	for _, ver := range v.Versions {
		s.Versions = append(s.Versions, VersionStatus{Version: ver.Version, Rows: ver.Rows, Instances: ver.Instances,
			Predict: ver.Predict.Summary(), EndToEnd: ver.EndToEnd.Summary()})
	}
	for _, i := range v.Instances {
		is := InstanceStatus{Instance: i.Instance, State: i.State, AgeSeconds: i.Age.Seconds(), Host: i.Host, PID: i.PID,
			Inferops: i.Inferops, Started: i.Started, ControlState: i.ControlState, Control: i.Control, Workers: i.Workers,
			Members: i.Members, InRate: i.InRate, OutRate: i.OutRate, DLQ: i.DLQTotal, Lag: i.Lag, Breaker: i.Breaker,
			Paused: i.Paused, Target: i.Target, Serving: []int64{}, Predict: i.Predict.Summary(), EndToEnd: i.EndToEnd.Summary(),
			TFServing: i.TFServing, Others: i.Others}
		for _, r := range i.Versions {
			if r.Serving() {
				is.Serving = append(is.Serving, r.Version)
			}
		}
		s.Instances = append(s.Instances, is)
	}
	s.Events = v.Events
	if len(s.Events) > maxStatusEvents {
		s.Events = s.Events[len(s.Events)-maxStatusEvents:]
	}
	return s
}

// PrintStatus writes s as `inferops fleet status` shows it.
func PrintStatus(w io.Writer, s Status) {
	t := s.Totals
	fmt.Fprintf(w, "group %s  desired: %s", s.Group, s.Asks)
	if d := s.Desired; d != nil {
		fmt.Fprintf(w, " (seq %d by %s at %s)", d.Seq, d.By, d.At.Local().Format("2006-01-02 15:04:05"))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "instances %d live, %d lost  workers %d", t.Live, t.Lost, t.Workers)
	if t.Partitions > 0 {
		fmt.Fprintf(w, " over %d partitions", t.Partitions)
	}
	fmt.Fprintf(w, "  in %.1f/s  out %.1f/s  dlq %d  lag %d", t.InRate, t.OutRate, t.DLQ, t.Lag)
	if t.Following > 0 && s.Desired != nil {
		fmt.Fprintf(w, "  control %d/%d applied", t.Applied, t.Following)
	}
	fmt.Fprintln(w)
	if t.Partitions > 0 && t.Members > t.Partitions {
		fmt.Fprintf(w, "note: %d members for %d partitions: %d get no partition\n", t.Members, t.Partitions, t.Members-t.Partitions)
	}
	fmt.Fprintf(w, "latency, last 10 s merged over the live instances: predict %s   end-to-end %s\n", latencyText(s.Predict), latencyText(s.EndToEnd))
	for _, v := range s.Versions {
		fmt.Fprintf(w, "  version %d: %s rows, serving on %d instances; predict %s   end-to-end %s\n", v.Version, group(v.Rows), v.Instances, latencyText(v.Predict), latencyText(v.EndToEnd))
	}
	if len(s.Instances) == 0 {
		fmt.Fprintf(w, "\nno instance of group %s has published in the last %s (are the workers running this inferops? is --fleet-topic right?)\n", s.Group, DefaultLookback)
	} else {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tSTATE\tAGE\tCONTROL\tSEQ\tWORKERS\tPARTITIONS\tIN/s\tOUT/s\tP99 ms\tE2E P99 ms\tTARGET\tSERVING\tBREAKER\tHOST\tPID")
		for _, i := range s.Instances {
			var parts []int32
			for _, m := range i.Members {
				parts = append(parts, m.Partitions...)
			}
			workers := strconv.Itoa(i.Workers)
			if i.Paused {
				workers += " paused"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\t%d\t%s\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
				i.Instance, i.State, i.AgeSeconds, i.ControlState, i.Control.Seq, workers, len(parts), i.InRate, i.OutRate,
				ms(i.Predict), ms(i.EndToEnd), i.Target, versions(i.Serving), orDash(i.Breaker), i.Host, i.PID)
		}
		tw.Flush()
		for _, i := range s.Instances {
			if i.Control.Error != "" {
				fmt.Fprintf(w, "%s: %s\n", i.Instance, i.Control.Error)
			}
			if i.Control.Note != "" {
				fmt.Fprintf(w, "%s: %s\n", i.Instance, i.Control.Note)
			}
			for _, o := range i.Others {
				fmt.Fprintf(w, "%s: also published by pid %d on %s (started %s): two processes share the name; give one its own --instance\n", i.Instance, o.PID, o.Host, o.Started.Local().Format(time.RFC3339))
			}
		}
	}
	if len(s.Events) > 0 {
		fmt.Fprintln(w, "\nfleet events:")
		for _, e := range s.Events {
			fmt.Fprintf(w, "  %s %s\n", e.Time.Local().Format("15:04:05"), e.Message)
		}
	}
	if s.Bad > 0 {
		fmt.Fprintf(w, "\n%d records on the fleet topics could not be read (another tool writes there, or a newer inferops)\n", s.Bad)
	}
}

func latencyText(l Latency) string {
	if l.Count == 0 {
		return "no data"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s ms (%s samples)", num(l.P50ms), num(l.P99ms), num(l.MaxMs), group(uint64(l.Count)))
}

func ms(l Latency) string {
	if l.Count == 0 {
		return "-"
	}
	return num(l.P99ms)
}

func num(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func versions(vs []int64) string {
	if len(vs) == 0 {
		return "-"
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(out, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// group writes 1234567 as 1,234,567.
func group(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
