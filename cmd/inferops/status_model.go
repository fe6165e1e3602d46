package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// modelReport is the `model` section of `inferops status`.
type modelReport struct {
	Address  string           `json:"address"`
	Model    string           `json:"model"`
	Versions []modelVersion   `json:"versions"`
	Labels   map[string]int64 `json:"labels"`
	// Signature is serving_default of the latest available version.
	Signature *modelSignature `json:"signature,omitempty"`
	// StandIn: the server marks the model as a stand-in (inferops serve
	// --stand-in): its signature is a real model's, its outputs made up.
	StandIn bool `json:"stand_in"`
	// Hosts is every TF Serving host behind --tfserving and Skew how they
	// disagree, from one probe of each.
	Hosts []report.Host `json:"hosts"`
	Skew  []string      `json:"skew,omitempty"`
	fleet tfserving.Fleet
}

type modelVersion struct {
	Version      int64    `json:"version"`
	State        string   `json:"state"`
	Labels       []string `json:"labels"`
	ErrorCode    string   `json:"error_code"`
	ErrorMessage string   `json:"error_message,omitempty"`
}

type modelSignature struct {
	Name    string        `json:"name"`
	Version int64         `json:"version"`
	Method  string        `json:"method_name"`
	Inputs  []modelTensor `json:"inputs"`
	Outputs []modelTensor `json:"outputs"`
}

type modelTensor struct {
	Alias string  `json:"alias"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// modelSection is the model part of `inferops status`: TF Serving's (or the
// embedded model server's) every version's state from GetModelStatus, the
// signature from GetModelMetadata, and labels. TF Serving has no call that
// lists labels, so the labels named in --labels are resolved one by one
// (GetModelMetadata with the label).
type modelSection struct {
	tfs    *tfserving.Config
	model  string
	labels string
}

// addModelSectionFlags registers --tfserving (with its TLS flags), --model
// and --labels.
func addModelSectionFlags(f *cmdFlags) *modelSection {
	m := &modelSection{tfs: addTFServingFlags(f, "the embedded model server at "+pipeline.DefaultGRPCAddr+" when --brokers is empty too, otherwise no model section")}
	addPipelineFlags(f, pipelineNames{Model: &m.model})
	f.StringVar(&m.labels, "labels", "stable,canary", "version labels to resolve (TF Serving cannot list them)")
	return m
}

// collect fills r.Model. brokers is --brokers as given: on a real cluster
// without --tfserving there is no model server to ask.
func (m *modelSection) collect(ctx context.Context, brokers []string, r *statusReport) error {
	cfg := *m.tfs
	embedded := cfg.Address == ""
	if embedded && len(brokers) > 0 {
		return nil
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	rep, err := collectModel(ctx, cfg, m.model, splitLabels(m.labels))
	if err != nil {
		if embedded && status.Code(err) == codes.Unavailable {
			return fmt.Errorf("no embedded model server at %s: start it with `inferops serve` (or `make run`), or pass --tfserving", pipeline.DefaultGRPCAddr)
		}
		return err
	}
	r.Model = rep
	return nil
}

func splitLabels(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func collectModel(ctx context.Context, cfg tfserving.Config, model string, labels []string) (*modelReport, error) {
	cfg.Model = model
	c, err := tfserving.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	defer c.Close()
	fl := c.Probe(ctx)
	vs, err := c.ModelStatus(ctx, model)
	if err != nil {
		return nil, err
	}
	rep := &modelReport{Address: c.Address(), Model: model, Labels: map[string]int64{},
		Hosts: report.HostsOf(fl), Skew: report.SkewOf(fl), fleet: fl}
	for _, l := range labels {
		md, err := c.Metadata(ctx, model, tfserving.Target{Label: l})
		switch {
		case err == nil:
			rep.Labels[l] = md.Version
		case status.Code(err) == codes.InvalidArgument, status.Code(err) == codes.NotFound:
			// No such label, or it points at an unloaded version.
		default:
			return nil, err
		}
	}
	byVersion := map[int64][]string{}
	for l, v := range rep.Labels {
		byVersion[v] = append(byVersion[v], l)
	}
	// Highest first: the version serving "latest" leads.
	sort.Slice(vs, func(i, j int) bool { return vs[i].Version > vs[j].Version })
	for _, v := range vs {
		ls := byVersion[v.Version]
		sort.Strings(ls)
		if ls == nil {
			ls = []string{}
		}
		rep.Versions = append(rep.Versions, modelVersion{Version: v.Version, State: v.State, Labels: ls, ErrorCode: v.ErrorCode, ErrorMessage: v.ErrorMessage})
	}
	md, err := c.Metadata(ctx, model, tfserving.Target{})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return rep, nil // nothing AVAILABLE: the versions say why
		}
		return nil, err
	}
	rep.StandIn = md.StandIn()
	sig, ok := md.Signatures[tfserving.DefaultSignature]
	if !ok {
		return rep, nil
	}
	rep.Signature = &modelSignature{Name: sig.Name, Version: md.Version, Method: sig.MethodName, Inputs: tensors(sig.Inputs), Outputs: tensors(sig.Outputs)}
	return rep, nil
}

func tensors(m map[string]tfserving.TensorInfo) []modelTensor {
	out := make([]modelTensor, 0, len(m))
	for alias, ti := range m {
		out = append(out, modelTensor{Alias: alias, DType: ti.DType.String(), Shape: ti.Shape})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out
}

func shapeText(s []int64) string {
	if s == nil {
		return "unknown rank"
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func printModelStatus(w io.Writer, r *modelReport) {
	fmt.Fprintf(w, "\nmodel %s at %s\n", r.Model, r.Address)
	if r.StandIn {
		fmt.Fprintln(w, "a STAND-IN: the signature of a real model (inferops serve --stand-in), outputs made up from the inputs")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tLABELS\tSTATUS")
	for _, v := range r.Versions {
		st := v.ErrorCode
		if v.ErrorMessage != "" {
			st += ": " + v.ErrorMessage
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", v.Version, v.State, orDash(strings.Join(v.Labels, ",")), st)
	}
	_ = tw.Flush()
	if s := r.Signature; s != nil {
		fmt.Fprintf(w, "signature %s (%s) of version %d\n", s.Name, s.Method, s.Version)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range s.Inputs {
			fmt.Fprintf(tw, "  input\t%s\t%s\t%s\n", t.Alias, t.DType, shapeText(t.Shape))
		}
		for _, t := range s.Outputs {
			fmt.Fprintf(tw, "  output\t%s\t%s\t%s\n", t.Alias, t.DType, shapeText(t.Shape))
		}
		_ = tw.Flush()
	} else {
		fmt.Fprintln(w, "signature: none (no version is AVAILABLE)")
	}
	if len(r.Hosts) > 1 {
		fmt.Fprintf(w, "TF Serving hosts\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tSTATE\tAVAILABLE\tLABELS\tWHY")
		for _, h := range r.Hosts {
			var ls []string
			for l, v := range h.Labels {
				ls = append(ls, l+"="+strconv.FormatInt(v, 10))
			}
			sort.Strings(ls)
			av := make([]string, len(h.Available))
			for i, v := range h.Available {
				av[i] = strconv.FormatInt(v, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Address, h.State, orDash(strings.Join(av, ",")), orDash(strings.Join(ls, ",")), orDash(h.Reason))
		}
		_ = tw.Flush()
	}
	for _, s := range r.Skew {
		fmt.Fprintf(w, "VERSION SKEW: %s\n", s)
	}
}
