package doctor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
)

// VersionState is one model version as GetModelStatus reports it.
type VersionState struct {
	Version int64  `json:"version"`
	State   string `json:"state"` // AVAILABLE, LOADING, END, ...
	Error   string `json:"error,omitempty"`
}

// TFFacts is what doctor learned from TF Serving; JudgeTF turns it into
// checks (pure, table-tested), gathering lives with the client.
type TFFacts struct {
	Addr  string
	Model string

	StatusErr string // GetModelStatus failed (e.g. NOT_FOUND)
	Versions  []VersionState
	Labels    map[string]int64 // version labels that resolved (label -> version)

	SignatureErr string // GetModelMetadata or building a probe row failed
	// StandIn: the server marks the model as a stand-in (made up from a
	// real model's metadata by `inferops serve --stand-in`), whose
	// Signature is "inputs -> outputs".
	StandIn   bool
	Signature string

	// Probe: ProbeN Predict calls of one valid row, sequentially.
	ProbeN      int
	ProbeErrors int
	ProbeErr    string // first error
	P50, P99    time.Duration
	// SLO is the p99 the probe must meet (0 = DefaultPredictSLO); four
	// times it is a FAIL.
	SLO time.Duration
}

// DefaultPredictSLO is the small scenario's latency target; the probe is
// one row on an idle path, so it has to fit the tightest SLO with room to
// spare. --predict-slo sets another (the seed's medium and high scenarios
// allow 100 and 200 ms).
const DefaultPredictSLO = 50 * time.Millisecond

// JudgeTF returns the model, versions and Predict checks.
func JudgeTF(f TFFacts) []Check {
	model := judgeModel(f)
	if model.Status == Fail {
		return append([]Check{model}, skipped(SectionTFServing, "model "+f.Model+" not available",
			[2]string{"tfserving.versions", "versions and labels"},
			[2]string{"tfserving.predict", "Predict p99 (probe)"})...)
	}
	out := []Check{model, judgeVersions(f)}
	if f.StandIn {
		out = append(out, judgeStandIn(f))
	}
	return append(out, judgeProbe(f))
}

// judgeStandIn says the model answering is not the model: right for a
// rehearsal, wrong for production.
func judgeStandIn(f TFFacts) Check {
	c := tfCheck("tfserving.standin", "real model, not a stand-in")
	c.Status = Warn
	c.Seen = "model " + f.Model + " is a stand-in (" + f.Signature + "): its outputs are made up from its signature"
	c.Want = "the real model"
	c.Why = "a stand-in rehearses a pipeline against a model's shape; its predictions and latencies say nothing about the real model"
	c.Fix = "fine for a rehearsal; for production point --tfserving at the TF Serving that serves the real " + f.Model
	return c
}

func judgeModel(f TFFacts) Check {
	c := tfCheck("tfserving.model", "model "+f.Model)
	c.Want = "at least one version AVAILABLE"
	c.Why = "Predict without a version goes to the latest AVAILABLE version; with none, every request fails and records go to the DLQ"
	if f.StatusErr != "" {
		c.Status, c.Seen = Fail, f.StatusErr
		c.Fix = fmt.Sprintf("is the model loaded? check --model (now %q) against tensorflow_model_server --model_name / the model config file, "+
			"and that the base path has numbered version directories (/models/%s/1/saved_model.pb)", f.Model, f.Model)
		return c
	}
	var avail []string
	for _, v := range f.Versions {
		if v.State == "AVAILABLE" {
			avail = append(avail, fmt.Sprint(v.Version))
		}
	}
	if len(avail) == 0 {
		c.Status = Fail
		c.Seen = "no version AVAILABLE: " + versionList(f.Versions)
		c.Fix = "read the server log for the load error; LOADING resolves itself, END with an error needs a fixed SavedModel"
		return c
	}
	c.Status = Pass
	c.Seen = "AVAILABLE: version " + strings.Join(avail, ", ")
	return c
}

func versionList(vs []VersionState) string {
	if len(vs) == 0 {
		return "none reported"
	}
	var parts []string
	for _, v := range vs {
		s := fmt.Sprintf("%d %s", v.Version, v.State)
		if v.Error != "" {
			s += " (" + v.Error + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func judgeVersions(f TFFacts) Check {
	c := tfCheck("tfserving.versions", "versions and labels")
	c.Why = "a version that failed to load (END with an error) means a rollout did not happen; labels show what stable/canary traffic hits"
	c.Seen = versionList(f.Versions)
	if len(f.Labels) > 0 {
		labels := make([]string, 0, len(f.Labels))
		for l, v := range f.Labels {
			labels = append(labels, fmt.Sprintf("%s=%d", l, v))
		}
		sort.Strings(labels)
		c.Seen += "; labels " + strings.Join(labels, ", ")
	} else {
		c.Seen += "; no labels"
	}
	c.Status = Info
	for _, v := range f.Versions {
		if v.Error != "" && v.Error != "OK" {
			c.Status = Warn
			c.Want = "no failed loads"
			c.Fix = fmt.Sprintf("version %d failed to load: fix or remove /models/%s/%d, the server retries on its next poll", v.Version, f.Model, v.Version)
			break
		}
	}
	return c
}

func judgeProbe(f TFFacts) Check {
	c := tfCheck("tfserving.predict", "Predict p99 (probe)")
	slo := f.SLO
	if slo <= 0 {
		slo = DefaultPredictSLO
	}
	c.Want = fmt.Sprintf("p99 <= %s for one row, no errors", slo)
	c.Why = "the seed's SLO is 50/100/200 ms end to end; if one idle Predict already takes that long, the pipeline cannot meet it"
	switch {
	case f.SignatureErr != "":
		c.Status, c.Seen = Warn, "not probed: "+f.SignatureErr
		c.Fix = "check the model's serving_default signature (saved_model_cli show --dir /models/" + f.Model + "/<version> --all)"
		return c
	case f.ProbeN == 0:
		c.Status, c.Seen = Skip, "not probed"
		return c
	}
	c.Seen = fmt.Sprintf("p50 %s, p99 %s over %d calls", round(f.P50), round(f.P99), f.ProbeN)
	if f.ProbeErrors > 0 {
		c.Status = Fail
		c.Seen += fmt.Sprintf(", %d failed: %s", f.ProbeErrors, f.ProbeErr)
		c.Fix = "Predict errors with a row built from the model's own signature: read the server log; UNAVAILABLE means the batching queue is full or the server is overloaded"
		return c
	}
	switch {
	case f.P99 <= slo:
		c.Status = Pass
	case f.P99 <= 4*slo:
		c.Status = Warn
		c.Fix = "the model is slow even unloaded: serve on a GPU, or prune/distil/quantise it; check the TF Serving host's CPU (top) and num_batch_threads"
	default:
		c.Status = Fail
		c.Fix = "one row takes over 4x the SLO: serve on a GPU, or prune/distil the model; check the network path (ping) to " + f.Addr
	}
	return c
}

// JudgeSkew compares what the hosts serve (facts[i] is hosts[i]'s, nil when
// it could not be asked) with tfserving.FindSkew, the comparison behind the
// console's header flag. Different version sets are a WARN (a rollout in
// progress looks like this, but "latest" then answers differently per
// host); a label meaning different versions on different hosts is a FAIL.
func JudgeSkew(model string, hosts []string, facts []*TFFacts) Check {
	c := tfCheck("tfserving.skew", "version skew across hosts")
	c.Want = "every host serves the same AVAILABLE versions and labels"
	c.Why = "the worker balances Predicts across the hosts: when they disagree, results come from different model versions depending on the host"
	hv := make([]tfserving.HostVersions, len(hosts))
	asked := 0
	for i, h := range hosts {
		hv[i].Addr = h
		f := facts[i]
		if f == nil {
			hv[i].Err = "not reachable"
			continue
		}
		asked++
		for _, v := range f.Versions {
			if v.State == "AVAILABLE" {
				hv[i].Available = append(hv[i].Available, v.Version)
			}
		}
		hv[i].Labels = f.Labels
	}
	skew := tfserving.FindSkew(model, tfserving.Target{}, hv)
	if len(skew) == 0 {
		if asked < 2 {
			c.Status, c.Seen = Skip, fmt.Sprintf("not checked: %d of %d hosts answered", asked, len(hosts))
			return c
		}
		c.Status, c.Seen = Pass, fmt.Sprintf("%d hosts agree", asked)
		return c
	}
	var msgs, odd []string
	c.Status = Warn
	for _, s := range skew {
		msgs = append(msgs, s.Message)
		for _, h := range s.Hosts {
			if !slices.Contains(odd, h) {
				odd = append(odd, h)
			}
		}
		if s.Kind == tfserving.SkewLabel {
			c.Status = Fail
		}
	}
	c.Seen = strings.Join(msgs, "; ")
	c.Fix = fmt.Sprintf("bring %s in line with the other hosts (same model versions and version_labels in the model config), "+
		"or pin the worker to a version every host serves (--target-version N)", strings.Join(odd, ", "))
	return c
}
