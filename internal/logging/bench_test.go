package logging

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/inferops/inferops/internal/config"
)

// BenchmarkLogLine measures what redaction costs per log line over slog's
// plain JSON handler: the worker logs a stats line every interval and an
// event per rebalance/breaker change, so this is the budget it spends.
func BenchmarkLogLine(b *testing.B) {
	for i := 0; i < 10; i++ {
		config.RegisterSecret("bench-secret-value-" + string(rune('a'+i)))
	}
	attrs := func(l *slog.Logger) {
		l.Info("stats", "workers", 4, "consumed", uint64(1234567), "dlq", uint64(12), "qps", 4850.5,
			"predict_p99", 47*time.Millisecond, "breaker", "closed", "target", "my_model@v2")
	}
	b.Run("slog-json", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil))
		b.ReportAllocs()
		for b.Loop() {
			attrs(l)
		}
	})
	b.Run("redacting-json", func(b *testing.B) {
		l, _, _ := New(Options{Writer: io.Discard})
		b.ReportAllocs()
		for b.Loop() {
			attrs(l)
		}
	})
	b.Run("redacting-json-error-attr", func(b *testing.B) {
		l, _, _ := New(Options{Writer: io.Discard})
		err := io.ErrUnexpectedEOF
		b.ReportAllocs()
		for b.Loop() {
			l.Warn("produce failed", "err", err, "topic", "ai_output", "partition", 3)
		}
	})
}
