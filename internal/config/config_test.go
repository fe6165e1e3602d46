package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The file shape from issue 7, extended with embedded/metrics/log.
const fullFile = `
kafka:
  brokers: [broker1:9092, broker2:9092]
  version: 3.5.0
  client_id: ops
  tls: {ca_file: /etc/pki/kafka/ca.pem, cert_file: /etc/pki/kafka/c.pem, key_file: /etc/pki/kafka/c.key, insecure_skip_verify: false}
  sasl: {mechanism: SCRAM-SHA-512, username: svc, password: "file-pass-123", password_file: /etc/inferops/kafka.pw}
tfserving: {address: "tfs:8500", model: my_model, tls: {enable: true, ca_file: /ca.pem}}
pipeline: {input: ai_input, output: ai_output, dlq: ai_input.dlq, group: tf_serving_group,
           workers: 4, max_batch: 64, batch_timeout: 1ms}
embedded: {data_dir: /var/lib/inferops, ephemeral: false, kafka_addr: "127.0.0.1:9092"}
metrics: {addr: ":9100"}
log: {level: debug, format: json}
`

func TestParseFullFile(t *testing.T) {
	f, err := Parse("/etc/inferops/inferops.yaml", []byte(fullFile))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kafka.brokers":                  "broker1:9092,broker2:9092",
		"kafka.version":                  "3.5.0",
		"kafka.tls.insecure_skip_verify": "false",
		"kafka.sasl.mechanism":           "SCRAM-SHA-512",
		"kafka.sasl.password":            "file-pass-123",
		"tfserving.address":              "tfs:8500",
		"tfserving.tls.enable":           "true",
		"pipeline.workers":               "4",
		"pipeline.batch_timeout":         "1ms",
		"metrics.addr":                   ":9100",
		"log.level":                      "debug",
	}
	for path, text := range want {
		v, ok := f.Get(path)
		if !ok || v.Text != text {
			t.Errorf("%s = %q (set %v), want %q", path, v.Text, ok, text)
		}
	}
	if v, _ := f.Get("pipeline.workers"); v.Line != 10 {
		t.Errorf("pipeline.workers line %d, want 10", v.Line)
	}
	// Loading the file registers its secret for Scrub.
	if got := Scrub("auth failed for file-pass-123"); strings.Contains(got, "file-pass-123") {
		t.Errorf("file password not scrubbed: %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	const p = "/etc/inferops/inferops.yaml"
	tests := []struct {
		name, yaml string
		want       string // substring of the error
	}{
		{"bad int", "pipeline:\n  workers: four\n", p + `: pipeline.workers: "four" is not a whole number (line 2)`},
		{"float int", "pipeline: {workers: 2.5}", `pipeline.workers: "2.5" is not a whole number`},
		{"typo key", "kafka:\n  brokerz: [a:1]\n", p + `: kafka.brokerz: unknown key (did you mean kafka.brokers?) (line 2)`},
		{"typo section", "tfservng: {model: m}", `tfservng: unknown key (did you mean tfserving?)`},
		{"unknown far key", "kafka: {zzzzzzzzzzzz: 1}", `kafka.zzzzzzzzzzzz: unknown key (known keys: brokers, client_id, sasl, tls, version)`},
		{"bad bool", "kafka: {tls: {enable: yes}}", `kafka.tls.enable: "yes" is not true or false`},
		{"bad duration", "pipeline: {batch_timeout: soon}", `pipeline.batch_timeout: "soon" is not a duration (want e.g. 1ms, 500us, 2s)`},
		{"unitless duration", "pipeline: {batch_timeout: 5}", `pipeline.batch_timeout: "5" has no unit`},
		{"broker without port", "kafka: {brokers: [broker1:9092, broker2]}", `kafka.brokers: item 1 "broker2" is not host:port (missing port; e.g. kafka-1:9092)`},
		{"broker list of maps", "kafka: {brokers: [{host: a}]}", `kafka.brokers: item 0: want a string, got a mapping`},
		{"brokers as map", "kafka: {brokers: {a: 1}}", `kafka.brokers: want a list (e.g. [broker1:9092, broker2:9092]), got a mapping`},
		{"section as scalar", "kafka: localhost:9092", `kafka: want a mapping of keys (e.g. brokers: ...), got "localhost:9092"`},
		{"top level list", "- a\n- b\n", `top level: want a mapping of keys`},
		{"string key got list", "tfserving: {model: [a, b]}", `tfserving.model: want a string, got a list`},
		{"enum", "kafka: {sasl: {mechanism: GSSAPI}}", `kafka.sasl.mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"log level", "log: {level: loud}", `log.level: "loud" is not one of debug, info, warn or error`},
		{"bad listen addr", "metrics: {addr: 9100}", `metrics.addr: "9100" is not host:port`},
		{"duplicate", "pipeline: {workers: 1, workers: 2}", `pipeline.workers: set twice (line 1)`},
		{"bad yaml", "kafka: [\n", p + `: not valid YAML`},
		{"secret not echoed", "kafka: {sasl: {password: [hunter2-secret]}}", `kafka.sasl.password: want a string, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(p, []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2-secret") {
				t.Errorf("error repeats the secret: %v", err)
			}
		})
	}
}

func TestParseEmptyAndNull(t *testing.T) {
	for _, src := range []string{"", "\n# only a comment\n", "kafka:\n", "kafka: {brokers: }\n", "---\n"} {
		f, err := Parse("x.yaml", []byte(src))
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if len(f.Values) != 0 {
			t.Errorf("%q: values %v, want none", src, f.Values)
		}
	}
	f, err := Parse("x.yaml", []byte("kafka: {brokers: \"a:1, b:2\"}"))
	if err != nil || f.Values["kafka.brokers"].Text != "a:1,b:2" {
		t.Errorf("comma string list: %v %v", f.Values, err)
	}
}

// listFlag mirrors cmd/inferops' commaList: a flag.Value that accumulates.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func TestPrecedence(t *testing.T) {
	file, err := Parse("/etc/inferops/inferops.yaml", []byte(`
kafka: {brokers: [f1:9092, f2:9092], client_id: from-file}
pipeline: {workers: 8, batch_timeout: 5ms, input: file_topic, group: file_group}
tfserving: {tls: {enable: true}}
`))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		brokers  string
		workers  int
		timeout  time.Duration
		clientID string
		topic    string
		group    string
		tls      bool
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		noFile  bool
		want    result
		sources map[string]Source
	}{
		{"file beats default", nil, nil, false,
			result{"f1:9092,f2:9092", 8, 5 * time.Millisecond, "from-file", "file_topic", "file_group", true},
			map[string]Source{"brokers": SourceFile, "workers": SourceFile, "model": SourceDefault}},
		{"env beats file", nil, map[string]string{"INFEROPS_BROKERS": "e1:9092", "INFEROPS_WORKERS": "2", "INFEROPS_TFSERVING_TLS": "false"}, false,
			result{"e1:9092", 2, 5 * time.Millisecond, "from-file", "file_topic", "file_group", false},
			map[string]Source{"brokers": SourceEnv, "workers": SourceEnv, "batch-timeout": SourceFile}},
		{"flag beats env", []string{"--brokers", "c1:9092", "--workers=3", "--topic", "cli_topic"}, map[string]string{"INFEROPS_BROKERS": "e1:9092", "INFEROPS_WORKERS": "2"}, false,
			result{"c1:9092", 3, 5 * time.Millisecond, "from-file", "cli_topic", "file_group", true},
			map[string]Source{"brokers": SourceFlag, "workers": SourceFlag, "topic": SourceFlag, "client-id": SourceFile}},
		{"empty env for an int means unset", nil, map[string]string{"INFEROPS_WORKERS": ""}, false,
			result{"f1:9092,f2:9092", 8, 5 * time.Millisecond, "from-file", "file_topic", "file_group", true},
			map[string]Source{"workers": SourceFile}},
		{"empty env for a list overrides the file (embedded broker)", nil, map[string]string{"INFEROPS_BROKERS": ""}, false,
			result{"", 8, 5 * time.Millisecond, "from-file", "file_topic", "file_group", true},
			map[string]Source{"brokers": SourceEnv}},
		{"no file", nil, nil, true,
			result{"", 4, time.Millisecond, "inferops", "ai_input", "tf_serving_group", false},
			map[string]Source{"brokers": SourceDefault, "workers": SourceDefault}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r result
			var brokers listFlag
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.Var(&brokers, "brokers", "")
			fs.IntVar(&r.workers, "workers", 4, "")
			fs.DurationVar(&r.timeout, "batch-timeout", time.Millisecond, "")
			fs.StringVar(&r.clientID, "client-id", "inferops", "")
			fs.StringVar(&r.topic, "topic", "ai_input", "") // perf's alias of pipeline.input
			fs.StringVar(&r.group, "group", "tf_serving_group", "")
			fs.BoolVar(&r.tls, "tfserving-tls", false, "")
			var model string
			fs.StringVar(&model, "model", "my_model", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			l := &Layers{File: file, LookupEnv: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }}
			if tt.noFile {
				l.File = nil
			}
			if err := l.Apply(fs); err != nil {
				t.Fatal(err)
			}
			r.brokers = brokers.String()
			if r != tt.want {
				t.Errorf("got  %+v\nwant %+v", r, tt.want)
			}
			for flagName, src := range tt.sources {
				if got := l.Origins[flagName].Source; got != src {
					t.Errorf("--%s source %v, want %v", flagName, got, src)
				}
			}
		})
	}
}

// A command-line-only flag keeps its default over the environment and the
// file, and Ignored says which of them was passed over.
func TestApplyCommandLineOnly(t *testing.T) {
	file, err := Parse("/etc/x.yaml", []byte("pipeline:\n  input: prod_in\n  group: prod_group\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		topic   string
		ignored map[string]string // flag -> origin
	}{
		{"file and env ignored", nil, map[string]string{"INFEROPS_GROUP": "env_group"}, "perf_in",
			map[string]string{"topic": "file /etc/x.yaml:2", "group": "env INFEROPS_GROUP"}},
		{"the command line wins and nothing is ignored", []string{"--topic", "cli_in", "--group", "cli_group"}, nil, "cli_in", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			topic := fs.String("topic", "perf_in", "")
			group := fs.String("group", "perf_group", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			l := &Layers{File: file, CommandLineOnly: []string{"topic", "group"}, LookupEnv: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }}
			if err := l.Apply(fs); err != nil {
				t.Fatal(err)
			}
			if *topic != tt.topic || (tt.args == nil && *group != "perf_group") {
				t.Errorf("--topic %q --group %q: the layers reached a command-line-only flag", *topic, *group)
			}
			got := map[string]string{}
			for name, o := range l.Ignored {
				got[name] = o.String()
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.ignored) {
				t.Errorf("Ignored = %v, want %v", got, tt.ignored)
			}
			if src := l.Origins["topic"].Source; (tt.args == nil) != (src == SourceDefault) {
				t.Errorf("--topic origin %v", l.Origins["topic"])
			}
		})
	}
}

func TestApplyErrorsNameTheSource(t *testing.T) {
	file, err := Parse("/etc/x.yaml", []byte("pipeline: {workers: -1}"))
	if err != nil {
		t.Fatal(err) // a whole number to YAML; the flag below takes no negatives
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"file value the flag rejects", nil, `/etc/x.yaml: pipeline.workers: "-1": `},
		{"env value the flag rejects", map[string]string{"INFEROPS_WORKERS": "four"}, `INFEROPS_WORKERS="four": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.Uint("workers", 4, "")
			_ = fs.Parse(nil)
			l := &Layers{File: file, LookupEnv: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }}
			err := l.Apply(fs)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "it sets --workers") {
				t.Errorf("error %v, want %q and the flag", err, tt.want)
			}
		})
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	old := DefaultPath
	t.Cleanup(func() { DefaultPath = old })
	DefaultPath = filepath.Join(dir, "inferops.yaml")
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name       string
		flagValue  string
		flagSet    bool
		env        map[string]string
		defExists  bool
		wantPath   string
		wantSource string
	}{
		{"nothing", "", false, nil, false, "", ""},
		{"default when present", "", false, nil, true, DefaultPath, "default"},
		{"env beats default", "", false, map[string]string{ConfigEnv: "/x.yaml"}, true, "/x.yaml", ConfigEnv},
		{"flag beats env", "/f.yaml", true, map[string]string{ConfigEnv: "/x.yaml"}, true, "/f.yaml", "--config"},
		{"empty flag = no file", "", true, nil, true, "", "--config"},
		{"empty env = no file", "", false, map[string]string{ConfigEnv: ""}, true, "", ConfigEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(DefaultPath)
			if tt.defExists {
				if err := os.WriteFile(DefaultPath, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p, w := ResolvePath(tt.flagValue, tt.flagSet, env(tt.env))
			if p != tt.wantPath || w != tt.wantSource {
				t.Errorf("got (%q, %q), want (%q, %q)", p, w, tt.wantPath, tt.wantSource)
			}
		})
	}
	withPW := filepath.Join(dir, "pw.yaml")
	for mode, wantWarn := range map[os.FileMode]bool{0o644: true, 0o640: false} {
		if err := os.WriteFile(withPW, []byte("kafka: {sasl: {password: warn-me-123}}\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(withPW, mode); err != nil {
			t.Fatal(err)
		}
		f, err := Load(withPW)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(f.Warnings) == 1 && strings.Contains(f.Warnings[0], "chmod 0640"); got != wantWarn {
			t.Errorf("mode %04o: warnings %q, want a chmod warning: %v", mode, f.Warnings, wantWarn)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const raw = "s3cr3t-Planted-Value"
	s := Secret(raw)
	type holder struct {
		User     string
		Password Secret
	}
	h := holder{"svc", s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(h), s.String())
	j, _ := json.Marshal(h)
	outs = append(outs, string(j))
	y, _ := yaml.Marshal(h)
	outs = append(outs, string(y))
	t1, _ := s.MarshalText()
	outs = append(outs, string(t1))
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		var hd slog.Handler = slog.NewJSONHandler(&buf, nil)
		if format == "text" {
			hd = slog.NewTextHandler(&buf, nil)
		}
		slog.New(hd).Info("login", "password", s, "holder", h, slog.Group("g", "p", s))
		outs = append(outs, buf.String())
	}
	for _, o := range outs {
		if strings.Contains(o, raw) || strings.Contains(o, fmt.Sprintf("%x", raw)) || strings.Contains(o, fmt.Sprintf("%X", raw)) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(string(j), `"Password":"***"`) {
		t.Errorf("JSON does not show the redaction: %s", j)
	}
	if s.Reveal() != raw {
		t.Error("Reveal lost the value")
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should print empty (so 'not set' stays visible)")
	}
}

func TestScrubAndRedact(t *testing.T) {
	RegisterSecret("  registered-pw-1  \n")
	RegisterSecret("ab") // too short to scrub safely
	tests := []struct{ in, want string }{
		{"SASL auth failed: user svc password registered-pw-1", "SASL auth failed: user svc password ***"},
		{"registered-pw-1registered-pw-1", "******"},
		{"abc", "abc"},
	}
	for _, tt := range tests {
		if got := Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Redact("token=xyz123 and pw=pw-longer-xyz123", "xyz123", "pw-longer-xyz123"); got != "token=*** and pw=***" {
		t.Errorf("Redact longest first: %q", got)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("from-a-file-99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	RegisterSecretFile(pw)
	if got := Scrub("bad password from-a-file-99"); got != "bad password ***" {
		t.Errorf("password file not registered: %q", got)
	}
}

func TestIsSensitiveKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "sasl_password": true, "SASLPassword": true, "api-token": true, "client_secret": true,
		"password_file": false, "key_file": false, "sasl-password-file": false, "brokers": false, "user": false,
	} {
		if got := IsSensitiveKey(key); got != want {
			t.Errorf("IsSensitiveKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// Every key maps to a flag named as DESIGN.md says, and no two keys share
// a flag: one name per setting.
func TestSchemaIsConsistent(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys {
		if k.Secret {
			if k.Flag != "" || k.EnvVar == "" {
				t.Errorf("%s: a secret has no flag and needs an env variable", k.Path)
			}
			continue
		}
		for _, f := range k.Flags() {
			if other, dup := seen[f]; dup {
				t.Errorf("--%s is both %s and %s", f, other, k.Path)
			}
			seen[f] = k.Path
		}
		if k.Default != "" {
			if err := k.CheckValue(k.Default); err != nil {
				t.Errorf("%s: default %q fails its own check: %v", k.Path, k.Default, err)
			}
		}
	}
	if k, _ := KeyForFlag("brokers"); k.Path != "kafka.brokers" || k.Env() != "INFEROPS_BROKERS" {
		t.Errorf("brokers maps to %+v", k)
	}
}
