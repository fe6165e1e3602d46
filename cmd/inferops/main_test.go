package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/internal/config"
)

// runCmd runs one command in this process as realMain does, writing to out
// and errOut, and returns its error rather than an exit code.
func runCmd(ctx context.Context, name string, args []string, out, errOut io.Writer) error {
	c, ok := lookup(name)
	if !ok {
		return fmt.Errorf("no command %q", name)
	}
	return execute(ctx, c, args, stdio{out: out, err: errOut})
}

// Every flag that fills a config key starts from the key's default, so
// `config print` shows what a command does when nothing is set. Flags the
// layers never fill (perf's own topics and group) are not that key's
// setting and are left out by their registration, not by this test.
func TestFlagDefaultsMatchConfigKeys(t *testing.T) {
	checked := 0
	var all []command
	for _, c := range commands {
		all = append(all, c)
		all = append(all, c.subs...)
	}
	for _, c := range all {
		if c.setup == nil {
			continue // a family: its subs are in the list
		}
		f, _ := c.setup()
		f.VisitAll(func(fl *flag.Flag) {
			k, ok := config.KeyForFlag(fl.Name)
			if !ok || k.Default == "" || f.isCmdLineOnly(fl.Name) {
				return
			}
			checked++
			if !sameValue(k.Kind, fl.DefValue, k.Default) {
				t.Errorf("inferops %s --%s defaults to %q, but %s defaults to %q", c.name, fl.Name, fl.DefValue, k.Path, k.Default)
			}
		})
	}
	// Kafka (4 with defaults) x 6 commands alone is 24: a refactor that
	// stops visiting the commands must not pass silently.
	if checked < 60 {
		t.Errorf("only %d flags checked", checked)
	}
}

// sameValue compares two values of a key in flag form: "1ms" is "1.0ms".
func sameValue(kind config.Kind, a, b string) bool {
	switch kind {
	case config.Duration:
		da, errA := time.ParseDuration(a)
		db, errB := time.ParseDuration(b)
		return errA == nil && errB == nil && da == db
	case config.Bool:
		ba, errA := strconv.ParseBool(a)
		bb, errB := strconv.ParseBool(b)
		return errA == nil && errB == nil && ba == bb
	case config.Int:
		ia, errA := strconv.Atoi(a)
		ib, errB := strconv.Atoi(b)
		return errA == nil && errB == nil && ia == ib
	}
	return a == b
}

// Each run builds its own flags: what one realMain parsed is gone in the
// next, with no state for a test to reset.
func TestSecondRunStartsClean(t *testing.T) {
	unsetEnv(t, "INFEROPS_WORKERS")
	t.Setenv("INFEROPS_CONFIG", "")
	workers := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := realMain(append([]string{"config", "print", "--json"}, args...), &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		var ec struct {
			Keys []struct {
				Key, Source string
				Value       any
			}
		}
		if err := json.Unmarshal(out.Bytes(), &ec); err != nil {
			t.Fatal(err)
		}
		for _, k := range ec.Keys {
			if k.Key == "pipeline.workers" {
				return fmt.Sprint(k.Value, "|", k.Source)
			}
		}
		t.Fatal("no pipeline.workers")
		return ""
	}
	if got := workers("--workers", "9"); got != "9|flag" {
		t.Fatalf("first run: %s", got)
	}
	if got := workers(); got != "4|default" {
		t.Errorf("second run: pipeline.workers %s, want 4|default", got)
	}
}

// perf's --topic, --output, --dlq and --group come from the command line
// only: an INFEROPS_* variable or the config file would aim a perf run at
// production, so they are passed over with a warning, and --help says so.
func TestPerfTargetsAreCommandLineOnly(t *testing.T) {
	file := t.TempDir() + "/inferops.yaml"
	writeFile(t, file, "pipeline: {input: ai_input, dlq: ai_input.dlq}\n")
	t.Setenv("INFEROPS_CONFIG", file)
	t.Setenv("INFEROPS_GROUP", "tf_serving_group")
	f, _ := perfCommand()
	var errOut bytes.Buffer
	f.SetOutput(&errOut)
	if err := f.parse([]string{"--output", "mine"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"topic": "ai_input.perf", "dlq": "", "group": "inferops_perf", "output": "mine"} {
		if got := f.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	for _, w := range []string{"ignoring --topic from file " + file + ":1", "ignoring --dlq from file", "ignoring --group from env INFEROPS_GROUP"} {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("warnings lack %q:\n%s", w, errOut.String())
		}
	}
	if strings.Contains(errOut.String(), "--output") {
		t.Errorf("warned about --output, which the command line set:\n%s", errOut.String())
	}

	errOut.Reset()
	f.Usage()
	help := errOut.String()
	for _, name := range []string{"topic", "output", "dlq", "group"} {
		i := strings.Index(help, "  --"+name+"\n")
		if i < 0 || !strings.Contains(strings.SplitN(help[i+3:], "\n  --", 2)[0], "[command line only]") {
			t.Errorf("--help does not say --%s is command line only:\n%s", name, help)
		}
	}
	if !strings.Contains(help, "[$INFEROPS_MODEL, tfserving.model]") {
		t.Errorf("--help lost the env variable and key of an ordinary flag:\n%s", help)
	}
}
