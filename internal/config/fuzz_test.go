package config

import (
	"strings"
	"testing"
)

// FuzzParseFile: the config file is outside bytes (an operator's editor, a
// config management tool). Whatever it holds, Parse must not panic, must
// name the file in every error, and every value it accepts must pass its
// key's own check: what the file sets is what a flag could have set.
// Seeds: testdata/fuzz/FuzzParseFile (packaging/inferops.yaml among them).
func FuzzParseFile(f *testing.F) {
	f.Add([]byte("kafka:\n  brokers: [b1:9092, b2:9092]\npipeline:\n  workers: 4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for path, v := range file.Values {
			if v.Key.Path != path {
				t.Fatalf("value under %q belongs to key %q", path, v.Key.Path)
			}
			if err := v.Key.CheckValue(v.Text); err != nil {
				t.Fatalf("accepted %s = %q, which the key refuses: %v", path, v.Text, err)
			}
		}
	})
}
