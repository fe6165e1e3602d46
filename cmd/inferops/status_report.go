package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/doctor"
	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/infer/worker"
	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
)

// statusReportInput turns what `inferops status` collected into the triage
// report's input: the Kafka snapshot (r.Snapshot, the second sample), the
// model section, advice from the two samples, and the errors of the parts
// that could not be read. The caller adds the configuration and secrets.
func statusReportInput(r *statusReport, first *cluster.Snapshot, brokers []string, sample time.Duration, errs []error) report.Input {
	in := report.Input{Version: version, Source: "inferops status --report", Kafka: r.Snapshot}
	ev := statusEvidence(first, r.Snapshot, brokers, sample)
	if m, ok := r.Model.(*modelReport); ok && m != nil {
		in.TFServingAddr, in.Model, in.ModelVersions, in.Fleet = m.Address, m.Model, m.versionStatuses(), &m.fleet
		in.ModelStandIn = m.StandIn
		ev.TFServingAddr = m.Address
	}
	if w, ok := r.Worker.(*worker.Stats); ok && w != nil {
		in.Worker = w
	}
	if f, ok := r.Fleet.(*fleetStatusOutput); ok && f != nil {
		in.WorkerFleet = &f.Status
		in.Rollout = f.Rollout
	}
	in.Advice = doctor.Advise(ev)
	for _, err := range errs {
		in.Errors = append(in.Errors, err.Error()) // report.Build redacts
	}
	return in
}

// statusEvidence is the Kafka half of the advice evidence from status's two
// samples. Two points are fewer than a trend needs (Thresholds.MinSamples),
// so the growth between them becomes LagTrend, but only when it is above
// the rules' noise floor: one-shot lag jitters by a commit interval.
func statusEvidence(first, last *cluster.Snapshot, brokers []string, sample time.Duration) pipeline.Evidence {
	e := doctor.KafkaEvidence([]*cluster.Snapshot{first, last}, brokers)
	if first == nil || last == nil || sample <= 0 {
		return e
	}
	var t doctor.Thresholds
	t.SetDefaults()
	if growth := last.TotalLag - first.TotalLag; growth >= t.LagGrowthMin {
		e.LagTrend = float64(growth) / sample.Seconds()
	}
	return e
}

// versionStatuses is the model section in the report's terms.
func (m *modelReport) versionStatuses() []tfserving.VersionStatus {
	out := make([]tfserving.VersionStatus, 0, len(m.Versions))
	for _, v := range m.Versions {
		out = append(out, tfserving.VersionStatus{Version: v.Version, State: v.State, ErrorCode: v.ErrorCode, ErrorMessage: v.ErrorMessage})
	}
	return out
}

// checkReportDir fails before the (slow) collection when --report points
// into a directory that does not exist, rather than after it.
func checkReportDir(file string) error {
	md, _ := report.Paths(file)
	dir := filepath.Dir(md)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("%w: --report %s: directory %s: %v (create it or pick another path)", errUsage, file, dir, errors.Unwrap(err))
	case !st.IsDir():
		return fmt.Errorf("%w: --report %s: %s is not a directory", errUsage, file, dir)
	}
	return nil
}

// writeStatusReport writes the Markdown report and its JSON twin.
func writeStatusReport(file string, in report.Input) (md, js string, err error) {
	return report.Write(file, in)
}
