package live

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferops/inferops/internal/report"
	"github.com/inferops/inferops/pipeline"
	"github.com/inferops/inferops/tui"
)

// plantedSecret stands for a SASL password the stack's adapter is told to
// keep out of reports.
const plantedSecret = "hunter2-sasl-Pa55"

// TestExportKeyWritesReport: e on the live console writes the Markdown
// report and its JSON twin under ReportDir, with the lag table and the
// served model versions, says so on screen and in the event log, and a
// secret that leaked into an event is redacted in both files.
func TestExportKeyWritesReport(t *testing.T) {
	s := startStack(t, 2)
	eventually(t, s.ad, "lag, workers and both versions known", 30*time.Second, func(d tui.Data) bool {
		return len(d.Kafka.Partitions) > 0 && d.Header.Workers == 2 && len(d.Models.Versions) >= 2
	})
	// An error text that carries the password, as a misbehaving client
	// library might print it.
	s.ad.event(pipeline.KindError, pipeline.Error, "kafka: SASL handshake failed for user ops password %s", plantedSecret)

	s.press(t, "e")
	dir := s.ad.cfg.ReportDir
	mds, _ := filepath.Glob(filepath.Join(dir, "inferops-report-*.md"))
	jss, _ := filepath.Glob(filepath.Join(dir, "inferops-report-*.json"))
	if len(mds) != 1 || len(jss) != 1 {
		t.Fatalf("want one .md and one .json in %s, got %v %v", dir, mds, jss)
	}
	md, err := os.ReadFile(mds[0])
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(jss[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
	}{
		{"lag table header", "| partition | leader | log end | committed | lag |"},
		{"lag section", "## Kafka lag: `ai_input` / `tf_serving_group`"},
		{"model version table", "| version | state |"},
		{"served version 2", "| 2 | AVAILABLE |"},
		{"source", "inferops console"},
		{"config setting", "kafka.sasl.user"},
		{"redacted event", "SASL handshake failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(md), tc.want) {
				t.Errorf("%q missing from %s:\n%s", tc.want, mds[0], md)
			}
		})
	}
	for name, b := range map[string][]byte{mds[0]: md, jss[0]: js} {
		if strings.Contains(string(b), plantedSecret) {
			t.Errorf("%s contains the secret", name)
		}
	}
	var r report.Report
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatalf("JSON twin: %v", err)
	}
	if r.Kafka == nil || len(r.Kafka.Partitions) == 0 || r.Model == nil || r.Workers == nil {
		t.Errorf("JSON twin lacks sections: kafka=%v model=%v workers=%v", r.Kafka != nil, r.Model != nil, r.Workers != nil)
	}

	if scr := s.model.View().Content; !strings.Contains(scr, "report written to") {
		t.Errorf("screen does not say where the report went:\n%s", scr)
	}
	found := false
	for _, e := range s.ad.Snapshot().Events.Items {
		found = found || (e.Kind == "report" && strings.Contains(e.Text, mds[0]))
	}
	if !found {
		t.Errorf("no report event naming %s", mds[0])
	}

	// A second press in the same second must not overwrite the first.
	s.press(t, "e")
	if mds2, _ := filepath.Glob(filepath.Join(dir, "inferops-report-*.md")); len(mds2) != 2 {
		t.Errorf("second export: %v, want two reports", mds2)
	}
}

// TestExportWithoutReportDir: an adapter given no ReportDir refuses with an
// error naming the flag, and writes nothing.
func TestExportWithoutReportDir(t *testing.T) {
	s := startStack(t, 1)
	s.ad.cfg.ReportDir = ""
	if _, _, err := s.ad.ExportReport(); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("err = %v, want one naming --data-dir", err)
	}
}
