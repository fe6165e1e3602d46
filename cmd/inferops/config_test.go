package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferops/inferops/internal/config"
)

func TestConfigPrintSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "inferops.yaml")
	writeFile(t, file, "kafka:\n  brokers: [f1:9092, f2:9092]\n  client_id: from-file\npipeline:\n  workers: 8\n  batch_timeout: 5ms\n")
	old := config.DefaultPath
	t.Cleanup(func() { config.DefaultPath = old })
	config.DefaultPath = file // the "present default" case
	tests := []struct {
		name string
		args []string
		env  map[string]string
		// key -> "value|source"
		want     map[string]string
		wantFile string
	}{
		{"default file", nil, nil, map[string]string{
			"kafka.brokers": "f1:9092,f2:9092|file", "pipeline.workers": "8|file", "tfserving.model": "my_model|default",
			"kafka.sasl.password": "|default",
		}, file},
		{"env over file", nil, map[string]string{"INFEROPS_WORKERS": "2", "INFEROPS_SASL_PASSWORD": "pw-from-env"}, map[string]string{
			"pipeline.workers": "2|env", "pipeline.batch_timeout": "5ms|file", "kafka.sasl.password": "***|env",
		}, file},
		{"flag over env", []string{"--workers", "3", "--brokers", "c:1", "--brokers", "d:2"}, map[string]string{"INFEROPS_WORKERS": "2"}, map[string]string{
			"pipeline.workers": "3|flag", "kafka.brokers": "c:1,d:2|flag", "kafka.client_id": "from-file|file",
		}, file},
		{"--config= means no file", []string{"--config="}, nil, map[string]string{
			"kafka.brokers": "|default", "pipeline.workers": "4|default",
		}, ""},
		{"INFEROPS_CONFIG names another file", nil, map[string]string{"INFEROPS_CONFIG": filepath.Join(dir, "other.yaml")}, map[string]string{
			"pipeline.workers": "16|file",
		}, filepath.Join(dir, "other.yaml")},
	}
	writeFile(t, filepath.Join(dir, "other.yaml"), "pipeline: {workers: 16}\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"INFEROPS_CONFIG", "INFEROPS_WORKERS", "INFEROPS_SASL_PASSWORD", "INFEROPS_BROKERS"} {
				unsetEnv(t, k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var buf bytes.Buffer
			if err := runCmd(t.Context(), "config", append([]string{"print", "--json"}, tt.args...), &buf, io.Discard); err != nil {
				t.Fatal(err)
			}
			var got struct {
				File string `json:"config_file"`
				Keys []struct {
					Key    string `json:"key"`
					Value  any    `json:"value"`
					Source string `json:"source"`
				} `json:"keys"`
			}
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			if got.File != tt.wantFile {
				t.Errorf("config_file %q, want %q", got.File, tt.wantFile)
			}
			for _, k := range got.Keys {
				want, ok := tt.want[k.Key]
				if !ok {
					continue
				}
				v := ""
				switch x := k.Value.(type) {
				case []any:
					var s []string
					for _, i := range x {
						s = append(s, i.(string))
					}
					v = strings.Join(s, ",")
				case float64:
					v = fmt.Sprint(x)
				case string:
					v = x
				}
				if v+"|"+k.Source != want {
					t.Errorf("%s = %q|%s, want %s", k.Key, v, k.Source, want)
				}
				delete(tt.want, k.Key)
			}
			for k := range tt.want {
				t.Errorf("%s missing from config print", k)
			}
		})
	}
}

// unsetEnv removes k for this test (t.Setenv restores it afterwards): the
// layers treat an empty variable as set.
func unsetEnv(t *testing.T, k string) {
	t.Setenv(k, "")
	os.Unsetenv(k)
}

func TestConfigPrintText(t *testing.T) {
	t.Setenv("INFEROPS_CONFIG", "")
	t.Setenv("INFEROPS_SASL_PASSWORD", "text-secret-xyz")
	var buf bytes.Buffer
	if err := runCmd(t.Context(), "config", []string{"print", "--kafka-version", "2.8.0"}, &buf, io.Discard); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"config file: none",
		"KEY", "SOURCE",
		"kafka.version", "2.8.0", "flag --kafka-version",
		"kafka.sasl.password", "***", "env INFEROPS_SASL_PASSWORD",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "text-secret-xyz") {
		t.Errorf("password printed:\n%s", out)
	}
}

func TestConfigCommandErrors(t *testing.T) {
	t.Setenv("INFEROPS_CONFIG", "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "kafka:\n  brokerz: [a:1]\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"config"}, "want 'inferops config print [--json]"},
		{[]string{"config", "show"}, "want 'inferops config print [--json]"},
		{[]string{"config", "print", "--config", bad}, bad + ": kafka.brokerz: unknown key (did you mean kafka.brokers?) (line 2)"},
		{[]string{"config", "print", "--config", filepath.Join(dir, "nope.yaml")}, "does not exist"},
		{[]string{"config", "print", "unexpected"}, `unexpected argument "unexpected"`},
	}
	for _, tt := range tests {
		err := runCmd(t.Context(), "config", tt.args[1:], io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.want)
		}
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: %v is not a usage error (exit 2)", tt.args, err)
		}
	}
}

func TestReportConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	writeFile(t, file, "pipeline: {group: g-file}\n")
	t.Setenv("INFEROPS_CONFIG", file)
	t.Setenv("INFEROPS_SASL_PASSWORD", "report-config-secret")
	fs := newFlags("t", "t", "")
	addKafkaFlags(fs)
	fs.String("group", "tf_serving_group", "")
	fs.Int("workers", 4, "")
	fs.Bool("unrelated", false, "")
	if err := fs.parse([]string{"--workers", "6"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range fs.reportConfig() {
		got[s.Key] = s.Value + "|" + s.Source
	}
	for k, want := range map[string]string{"pipeline.group": "g-file|file", "pipeline.workers": "6|flag", "kafka.version": "3.5.0|default"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	if _, ok := got["kafka.sasl.password"]; ok {
		t.Error("the password reached the report's configuration")
	}
	if len(got) != 13 { // the 11 Kafka client keys with a flag + group + workers
		t.Errorf("%d settings, want 13: %v", len(got), got)
	}
}
