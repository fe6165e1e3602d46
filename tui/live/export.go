package live

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/rollout"
)

// ExportReport implements tui.Backend: it writes the triage report of this
// moment to ReportDir/inferops-report-<UTC time>.md and its JSON twin. It
// uses only what the adapter already holds (the latest Kafka snapshot,
// worker stats, model status, events, advice), so it never waits on Kafka
// or TF Serving; the console still runs it as a tea.Cmd because it writes
// files.
func (a *Adapter) ExportReport() (md, js string, err error) {
	if a.cfg.ReportDir == "" {
		return "", "", errors.New("no report directory configured (the console writes reports under <--data-dir>/reports)")
	}
	in := a.reportInput()
	if err := os.MkdirAll(a.cfg.ReportDir, 0o700); err != nil {
		return "", "", fmt.Errorf("create report directory %s: %w (check --data-dir is writable)", a.cfg.ReportDir, err)
	}
	file, err := freeReportName(a.cfg.ReportDir, in.Time)
	if err != nil {
		return "", "", err
	}
	md, js, err = report.Write(file, in)
	if err != nil {
		a.event(pipeline.KindError, pipeline.Error, "triage report: %v", err)
		return "", "", err
	}
	a.event(pipeline.KindReport, pipeline.Info, "triage report written to %s (JSON twin %s)", md, js)
	return md, js, nil
}

// freeReportName picks a name no earlier export used: two presses in the
// same second must not overwrite the first report.
func freeReportName(dir string, t time.Time) (string, error) {
	base := filepath.Join(dir, "inferops-report-"+t.UTC().Format("20060102T150405Z"))
	for i := 0; i < 100; i++ {
		name := base + ".md"
		if i > 0 {
			name = fmt.Sprintf("%s-%d.md", base, i)
		}
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("triage report: %s*.md already taken 100 times (clean up %s)", base, dir)
}

// reportInput copies the held state into the report's terms under the lock.
func (a *Adapter) reportInput() report.Input {
	in := report.Input{
		Time: time.Now(), Version: a.cfg.Version, Source: "inferops console (e: export)",
		TFServingAddr: a.cfg.TFServing, Model: a.cfg.Model, ModelStandIn: a.d.Models.StandIn,
		Config: a.cfg.ReportConfig, Secrets: a.cfg.Secrets,
	}
	if a.cfg.TFS != nil {
		in.ModelLatency = a.cfg.TFS.Latency() // in-process histograms, no RPC
		fl := a.cfg.TFS.Fleet()               // the probes' latest answers, no RPC
		in.Fleet = &fl
	}
	if c := a.cfg.Fleet; c != nil {
		v := c.View() // the reader's merge: no Kafka round trip
		st := v.Status()
		in.WorkerFleet = &st
		if v.Rollout != nil && v.Rollout.Rollout != nil {
			ro := rollout.StatusOf(v)
			in.Rollout = &ro
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	in.Kafka = a.last
	// The dead letters the DLQ panel read from the topic (payloads are
	// dropped by the report); the report wants oldest first.
	if a.dlq != nil {
		for _, d := range slices.Backward(a.dlq.Records) {
			in.DLQ = append(in.DLQ, d)
		}
	}
	for _, v := range a.d.Models.Versions {
		in.ModelVersions = append(in.ModelVersions, tfserving.VersionStatus{Version: v.Version, State: v.State})
	}
	if a.cfg.Pool != nil {
		st := a.pool.stats
		in.Worker = &st
	}
	// The console's event log is newest first and already holds the
	// worker's own events; the report wants oldest first.
	for _, e := range slices.Backward(a.events) {
		in.Events = append(in.Events, e)
	}
	in.Advice = slices.Clone(a.advice.last)
	if e := a.d.Kafka.Err; e != "" {
		in.Errors = append(in.Errors, "Kafka: "+e)
	}
	if e := a.d.Models.Err; e != "" {
		in.Errors = append(in.Errors, "model server: "+e)
	}
	return in
}
