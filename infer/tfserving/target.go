package tfserving

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Target picks a version of a model: a number, a label, or (zero value) the
// latest AVAILABLE version.
type Target struct {
	Version int64
	Label   string
}

// ParseTarget reads "latest" (or ""), "2", "v2", "label:stable" or "stable".
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || strings.EqualFold(s, "latest"):
		return Target{}, nil
	case strings.HasPrefix(s, "label:"):
		l := strings.TrimPrefix(s, "label:")
		if err := checkLabel(l); err != nil {
			return Target{}, fmt.Errorf("version target %q: %w", s, err)
		}
		return Target{Label: l}, nil
	}
	num := s
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && s[1] >= '0' && s[1] <= '9' {
		num = s[1:]
	}
	if v, err := strconv.ParseInt(num, 10, 64); err == nil {
		if v <= 0 {
			return Target{}, fmt.Errorf("version target %q: versions are positive numbers", s)
		}
		return Target{Version: v}, nil
	}
	if num != s || s[0] == '-' || s[0] == '+' || allDigits(s) {
		return Target{}, fmt.Errorf("version target %q: not a version number (want latest, 2, v2, label:stable or stable)", s)
	}
	if err := checkLabel(s); err != nil {
		return Target{}, fmt.Errorf("version target %q: %w (want latest, 2, v2, label:stable or stable)", s, err)
	}
	return Target{Label: s}, nil
}

// checkLabel applies TF Serving's documented label alphabet.
func checkLabel(l string) error {
	if l == "" {
		return fmt.Errorf("empty label")
	}
	for _, r := range l {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("label %q: labels are [a-zA-Z0-9_]+", l)
		}
	}
	return nil
}

// String is the form ParseTarget reads back.
func (t Target) String() string {
	switch {
	case t.Label != "":
		return "label:" + t.Label
	case t.Version != 0:
		return strconv.FormatInt(t.Version, 10)
	}
	return "latest"
}

// IsLatest reports the zero target.
func (t Target) IsLatest() bool { return t.Label == "" && t.Version == 0 }

// Spec is the ModelSpec this target asks for.
func (t Target) Spec(model, signature string) *tfpb.ModelSpec {
	s := &tfpb.ModelSpec{Name: model, SignatureName: signature}
	switch {
	case t.Label != "":
		s.VersionChoice = &tfpb.ModelSpec_VersionLabel{VersionLabel: t.Label}
	case t.Version != 0:
		s.VersionChoice = &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(t.Version)}
	}
	return s
}

// describe is "my_model v2", "my_model label stable" or "my_model latest"
// for error messages.
func (t Target) describe(model string) string {
	switch {
	case t.Label != "":
		return model + " label " + t.Label
	case t.Version != 0:
		return model + " v" + strconv.FormatInt(t.Version, 10)
	}
	return model + " latest"
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
