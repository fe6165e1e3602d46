package tfserving_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/inferops/inferops/infer/tfserving"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		hosts   []string
		dns     string
		wantErr string
	}{
		{in: "10.0.0.5:8500", hosts: []string{"10.0.0.5:8500"}},
		{in: "a:8500, b:8500,a:8500", hosts: []string{"a:8500", "b:8500"}},
		{in: "[::1]:8500", hosts: []string{"[::1]:8500"}},
		{in: ":8500", hosts: []string{":8500"}},
		{in: "dns:///tfs.example:8500", dns: "dns:///tfs.example:8500"},
		{in: "dns://10.0.0.53/tfs.example:8500", dns: "dns://10.0.0.53/tfs.example:8500"},
		{in: "dns:tfs.example:8500", dns: "dns:tfs.example:8500"},
		{in: "10.0.0.5", wantErr: "want host:port"},
		{in: "a:8500,", wantErr: "empty address in the list"},
		{in: "a:8500,b", wantErr: `"b": want host:port`},
		{in: "h:99999", wantErr: "port"},
		{in: "dns:///tfs.example", wantErr: "want host:port"},
		{in: "dns://%zz/x:1", wantErr: "dns:///name:port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := tfserving.ParseAddress(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--tfserving") {
					t.Fatalf("err %v, want one naming --tfserving and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(a.Hosts, tt.hosts) || a.DNS != tt.dns {
				t.Fatalf("got %+v, %v", a, err)
			}
		})
	}
}

// FuzzParseAddress: --tfserving comes from flags, the environment and the
// config file; no input may panic, and every accepted list is host:port
// entries.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8500", "a:1,b:2", "dns:///x:1", "dns://[::1]:53/x:1", ",", "dns:", "[::1]:8500,[", "a:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := tfserving.ParseAddress(s)
		if err != nil {
			return
		}
		if (a.DNS == "") == (len(a.Hosts) == 0) {
			t.Fatalf("%q: %+v: want either hosts or a DNS name", s, a)
		}
		for _, h := range a.Hosts {
			if h == "" || strings.Contains(h, ",") {
				t.Fatalf("%q: bad host %q", s, h)
			}
		}
	})
}

func TestFindSkew(t *testing.T) {
	both := []int64{1, 2}
	labels := map[string]int64{"stable": 1, "canary": 2}
	tests := []struct {
		name   string
		target tfserving.Target
		hosts  []tfserving.HostVersions
		want   []tfserving.Skew // Kind and Hosts only; Message checked for host names
	}{
		{"agree", tfserving.Target{}, []tfserving.HostVersions{{Addr: "a", Available: both, Labels: labels}, {Addr: "b", Available: both, Labels: labels}}, nil},
		{"one host", tfserving.Target{Version: 3}, []tfserving.HostVersions{{Addr: "a", Available: both}}, nil},
		{"down hosts are left out", tfserving.Target{}, []tfserving.HostVersions{{Addr: "a", Available: both}, {Addr: "b", Err: "down"}, {Addr: "c", Available: both}}, nil},
		{"version sets differ, latest", tfserving.Target{}, []tfserving.HostVersions{{Addr: "a", Available: both}, {Addr: "b", Available: both}, {Addr: "c", Available: []int64{1}}},
			[]tfserving.Skew{{Kind: tfserving.SkewVersions, Hosts: []string{"c"}}}},
		{"target missing on one", tfserving.Target{Version: 2}, []tfserving.HostVersions{{Addr: "a", Available: both}, {Addr: "b", Available: both}, {Addr: "c", Available: []int64{1}}},
			[]tfserving.Skew{{Kind: tfserving.SkewTarget, Hosts: []string{"c"}}, {Kind: tfserving.SkewVersions, Hosts: []string{"c"}}}},
		{"target missing everywhere is no skew", tfserving.Target{Version: 3}, []tfserving.HostVersions{{Addr: "a", Available: both}, {Addr: "b", Available: both}}, nil},
		{"label points at different versions", tfserving.Target{}, []tfserving.HostVersions{
			{Addr: "a", Available: both, Labels: map[string]int64{"stable": 2}}, {Addr: "b", Available: both, Labels: map[string]int64{"stable": 2}}, {Addr: "c", Available: both, Labels: map[string]int64{"stable": 1}}},
			[]tfserving.Skew{{Kind: tfserving.SkewLabel, Hosts: []string{"c"}}}},
		{"label missing on one", tfserving.Target{}, []tfserving.HostVersions{
			{Addr: "a", Available: both, Labels: labels}, {Addr: "b", Available: both, Labels: map[string]int64{"stable": 1}}, {Addr: "c", Available: both, Labels: labels}},
			[]tfserving.Skew{{Kind: tfserving.SkewLabelGap, Hosts: []string{"b"}}}},
		{"target label missing: said once, as the target", tfserving.Target{Label: "canary"}, []tfserving.HostVersions{
			{Addr: "a", Available: both, Labels: labels}, {Addr: "b", Available: both, Labels: map[string]int64{"stable": 1}}, {Addr: "c", Available: both, Labels: labels}},
			[]tfserving.Skew{{Kind: tfserving.SkewTarget, Hosts: []string{"b"}}}},
		{"a host without the model", tfserving.Target{}, []tfserving.HostVersions{{Addr: "a", Available: both}, {Addr: "b"}},
			[]tfserving.Skew{{Kind: tfserving.SkewVersions, Hosts: []string{"b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tfserving.FindSkew("my_model", tt.target, tt.hosts)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i, s := range got {
				if s.Kind != tt.want[i].Kind || !slices.Equal(s.Hosts, tt.want[i].Hosts) {
					t.Errorf("skew %d: %+v, want %+v", i, s, tt.want[i])
				}
				for _, h := range s.Hosts {
					if !strings.Contains(s.Message, h) || !strings.Contains(s.Message, "my_model") {
						t.Errorf("message %q does not name %s and the model", s.Message, h)
					}
				}
			}
		})
	}
	got := tfserving.FindSkew("my_model", tfserving.Target{Version: 2}, []tfserving.HostVersions{{Addr: "a", Available: both}, {Addr: "b", Available: both}, {Addr: "c", Available: []int64{1}}})
	if got[0].Message != "my_model v2 missing on c: it gets no v2 traffic" {
		t.Errorf("target message %q", got[0].Message)
	}
	if got[1].Message != "my_model versions differ across hosts: AVAILABLE 1,2 on a, b; AVAILABLE 1 on c" {
		t.Errorf("versions message %q", got[1].Message)
	}
}
