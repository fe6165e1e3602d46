package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inferops/inferops/infer/tfserving"
	"github.com/inferops/inferops/pipeline"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func init() {
	statusSections = append(statusSections, modelStatusSection())
}

// modelReport is the `model` section of `inferops status`.
type modelReport struct {
	Address  string           `json:"address"`
	Model    string           `json:"model"`
	Versions []modelVersion   `json:"versions"`
	Labels   map[string]int64 `json:"labels"`
	// Signature is serving_default of the latest available version.
	Signature *modelSignature `json:"signature,omitempty"`
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

// modelStatusSection reads TF Serving (or the embedded model server): every
// version's state from GetModelStatus, the signature from GetModelMetadata,
// and labels. TF Serving has no call that lists labels, so the labels named
// in --labels are resolved one by one (GetModelMetadata with the label).
func modelStatusSection() *statusSection {
	var (
		cfg     tfserving.Config
		model   string
		labels  string
		brokers flag.Value
		post    []func() // copy shared flags' parsed values
	)
	return &statusSection{
		name: "model",
		flags: func(fs *flag.FlagSet) {
			cfg, model, labels, brokers, post = tfserving.Config{}, "", "", nil, nil
			// Another section (the workers') may register the shared
			// TF Serving flags first; then both read the same values.
			str := func(p *string, name, usage string) {
				if f := fs.Lookup(name); f != nil {
					sv := f.Value
					*p = sv.String()
					post = append(post, func() { *p = sv.String() })
					return
				}
				fs.StringVar(p, name, *p, usage)
			}
			boolean := func(p *bool, name, usage string) {
				if f := fs.Lookup(name); f != nil {
					sv := f.Value
					post = append(post, func() { *p = sv.String() == "true" })
					return
				}
				fs.BoolVar(p, name, false, usage)
			}
			model, labels = pipeline.DefaultModel, "stable,canary"
			str(&cfg.Address, "tfserving", "TF Serving gRPC host:port for the model section; empty = the embedded model server at "+pipeline.DefaultGRPCAddr+" when --brokers is empty too, otherwise no model section")
			str(&model, "model", "model name on TF Serving")
			str(&labels, "labels", "version labels to resolve (TF Serving cannot list them)")
			boolean(&cfg.TLS.Enable, "tfserving-tls", "TLS to TF Serving (implied by any --tfserving-tls-* file)")
			str(&cfg.TLS.CAFile, "tfserving-tls-ca-file", "PEM CA bundle that signed TF Serving's certificate")
			str(&cfg.TLS.CertFile, "tfserving-tls-cert-file", "PEM client certificate for mutual TLS")
			str(&cfg.TLS.KeyFile, "tfserving-tls-key-file", "PEM client key for mutual TLS")
			boolean(&cfg.TLS.InsecureSkipVerify, "tfserving-tls-insecure-skip-verify", "do not verify TF Serving's certificate (testing only)")
			if f := fs.Lookup("brokers"); f != nil {
				brokers = f.Value
			}
		},
		collect: func(ctx context.Context, r *statusReport) error {
			for _, f := range post {
				f()
			}
			embedded := cfg.Address == ""
			if embedded && brokers != nil && brokers.String() != "" {
				return nil // a real cluster and no --tfserving: nothing to ask
			}
			if cfg.Timeout == 0 {
				cfg.Timeout = 5 * time.Second
			}
			rep, err := collectModel(ctx, cfg, model, splitLabels(labels))
			if err != nil {
				if embedded && status.Code(err) == codes.Unavailable {
					return fmt.Errorf("no embedded model server at %s: start it with `inferops serve` (or `make run`), or pass --tfserving", pipeline.DefaultGRPCAddr)
				}
				return err
			}
			r.Model = rep
			return nil
		},
		text: func(w io.Writer, r *statusReport) {
			if rep, ok := r.Model.(*modelReport); ok {
				printModelStatus(w, rep)
			}
		},
	}
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
	c, err := tfserving.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	defer c.Close()
	vs, err := c.ModelStatus(ctx, model)
	if err != nil {
		return nil, err
	}
	rep := &modelReport{Address: c.Address(), Model: model, Labels: map[string]int64{}}
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
}
