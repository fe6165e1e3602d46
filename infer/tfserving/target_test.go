package tfserving

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		str     string
		wantErr string
	}{
		{"latest", Target{}, "latest", ""},
		{"", Target{}, "latest", ""},
		{"2", Target{Version: 2}, "2", ""},
		{"v2", Target{Version: 2}, "2", ""},
		{"V17", Target{Version: 17}, "17", ""},
		{"label:stable", Target{Label: "stable"}, "label:stable", ""},
		{"stable", Target{Label: "stable"}, "label:stable", ""},
		{"canary_2", Target{Label: "canary_2"}, "label:canary_2", ""},
		{"0", Target{}, "", "positive"},
		{"-3", Target{}, "", "positive"},
		{"v-3", Target{}, "", "labels are"},
		{"label:", Target{}, "", "empty label"},
		{"label:a/b", Target{}, "", "labels are"},
		{"99999999999999999999", Target{}, "", "not a version"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTarget(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseTarget(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if back, err := ParseTarget(got.String()); err != nil || back != got {
				t.Errorf("round trip %q -> %v, %v", got.String(), back, err)
			}
		})
	}
}
