package live

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// modelsLoop reads every version's state from the model server and the
// client-side Predict latency per version (the worker shares the client,
// so these are the worker's own round trips).
func (a *Adapter) modelsLoop(ctx context.Context) {
	c := a.cfg.TFS
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	vs, err := c.ModelStatus(qctx, a.cfg.Model)
	lat := c.Latency()
	fl := c.Fleet()
	// The signature is read again only when the versions change: latest
	// may then be another version with another signature.
	key := fmt.Sprint(vs)
	a.mu.Lock()
	stale := a.sigKey != key
	a.mu.Unlock()
	var md *tfserving.Metadata
	if err == nil && stale {
		if md, _ = c.Metadata(qctx, a.cfg.Model, tfserving.Target{}); md != nil {
			a.mu.Lock()
			a.sigKey = key
			a.mu.Unlock()
		}
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fleetLocked(fl)
	if md != nil {
		a.showSignatureLocked(md)
	}
	if err != nil {
		msg := err.Error()
		if a.d.Models.Err != msg {
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceModels, Kind: pipeline.KindError, Level: pipeline.Error, Message: "model server: " + msg})
		}
		a.d.Models.Err = msg
		a.d.Models.At = now
		return
	}
	a.d.Models.Err = ""
	prev := map[int64]tui.ModelVersion{}
	for _, v := range a.d.Models.Versions {
		prev[v.Version] = v
	}
	out := make([]tui.ModelVersion, 0, len(vs))
	var best int64
	var bestRate float64
	for _, v := range vs {
		mv := tui.ModelVersion{Version: v.Version, State: v.State}
		if l, ok := lat[v.Version]; ok {
			mv.P99, mv.Count = l.P99, l.Count
		}
		mv.Labels = a.labels[v.Version]
		if p, ok := prev[v.Version]; ok {
			if p.State != v.State {
				lv := pipeline.Info
				if v.State == "END" && v.Version == a.d.Header.Served {
					lv = pipeline.Warn
				}
				a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceModels, Kind: pipeline.KindVersion, Level: lv, Message: fmt.Sprintf("%s version %d: %s -> %s", a.cfg.Model, v.Version, p.State, v.State)})
			}
			if dt := now.Sub(a.d.Models.At).Seconds(); dt > 0 && mv.Count >= p.Count {
				mv.Rate = float64(mv.Count-p.Count) / dt
			}
		}
		if mv.Rate > bestRate {
			best, bestRate = v.Version, mv.Rate
		}
		out = append(out, mv)
	}
	// "Served" is the version that answered the most Predicts since the
	// last refresh: what new results carry, whatever the target says.
	if best > 0 {
		if a.d.Header.Served != 0 && a.d.Header.Served != best {
			a.addEventLocked(pipeline.Event{Time: now, Source: pipeline.SourceModels, Kind: pipeline.KindVersion, Level: pipeline.Info, Message: fmt.Sprintf("results now come from %s version %d (was %d)", a.cfg.Model, best, a.d.Header.Served)})
		}
		a.d.Header.Served = best
	}
	for i := range out {
		out[i].Served = out[i].Version == a.d.Header.Served
	}
	a.d.Models.Versions = out
	a.d.Models.At = now
}

// showSignatureLocked puts the latest version's serving_default on the
// models panel, with the record fields the worker reads its inputs from.
func (a *Adapter) showSignatureLocked(md *tfserving.Metadata) {
	a.d.Models.StandIn = md.StandIn()
	a.d.Models.Inputs, a.d.Models.Outputs = nil, nil
	sig, err := md.ServingDefault()
	if err != nil {
		return
	}
	fields := map[string]string{}
	if a.cfg.Pool != nil {
		for _, in := range a.cfg.Pool.Signature().Inputs {
			if in.Field != in.Name {
				fields[in.Name] = in.Field
			}
		}
	}
	for _, t := range sig.InputSpecs() {
		a.d.Models.Inputs = append(a.d.Models.Inputs, tui.ModelTensor{Name: t.Name, DType: t.DType.String(), Shape: pipeline.FormatShape(t.Shape), Field: fields[t.Name]})
	}
	for _, t := range sig.OutputSpecs() {
		a.d.Models.Outputs = append(a.d.Models.Outputs, tui.ModelTensor{Name: t.Name, DType: t.DType.String(), Shape: pipeline.FormatShape(t.Shape)})
	}
}

// fleetLocked takes the client's view of the TF Serving hosts: the per-host
// rows, the header's skew flag, and the host events raised since the last
// refresh (the client keeps its own; they join the event log here).
func (a *Adapter) fleetLocked(fl tfserving.Fleet) {
	hosts := make([]tui.TFHost, 0, len(fl.Hosts))
	for _, h := range fl.Hosts {
		hosts = append(hosts, tui.TFHost{Addr: h.Addr, State: h.State, Reason: h.Reason, Versions: versionList(h.Available()),
			Share: h.Share, P50: h.P50, P99: h.P99, Errors: h.Errors})
	}
	a.d.Models.Hosts = hosts
	a.d.Header.Skew, a.d.Header.SkewHosts = "", nil
	if len(fl.Skew) > 0 {
		a.d.Header.Skew, a.d.Header.SkewHosts = fl.Skew[0].Short, fl.Skew[0].Hosts
		if n := len(fl.Skew) - 1; n > 0 {
			a.d.Header.Skew += fmt.Sprintf(" (+%d)", n)
		}
	}
	fresh := min(fl.EventsTotal-a.hostEvents, len(fl.Events))
	for _, e := range fl.Events[len(fl.Events)-fresh:] {
		a.addEventLocked(e)
	}
	a.hostEvents = fl.EventsTotal
}

func versionList(vs []int64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ",")
}
