package config

import (
	"flag"
	"testing"
	"time"
)

// BenchmarkLoadAndApply is the start-up cost every command pays for the
// config file: parse and check it, then fill a worker-sized flag set.
func BenchmarkLoadAndApply(b *testing.B) {
	data := []byte(fullFile)
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse("/etc/inferops/inferops.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		fs := flag.NewFlagSet("worker", flag.ContinueOnError)
		var brokers listFlag
		fs.Var(&brokers, "brokers", "")
		fs.String("kafka-version", "3.5.0", "")
		fs.String("client-id", "inferops", "")
		fs.String("sasl-mechanism", "", "")
		fs.String("sasl-username", "", "")
		fs.String("tfserving", "", "")
		fs.String("model", "my_model", "")
		fs.String("group", "tf_serving_group", "")
		fs.Int("workers", 4, "")
		fs.Int("max-batch", 64, "")
		fs.Duration("batch-timeout", time.Millisecond, "")
		_ = fs.Parse(nil)
		l := &Layers{File: f, LookupEnv: func(string) (string, bool) { return "", false }}
		if err := l.Apply(fs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrub is the cost of scrubbing one log-line-sized string with
// ten registered secrets, none present (the common case).
func BenchmarkScrub(b *testing.B) {
	for i := 0; i < 10; i++ {
		RegisterSecret("bench-scrub-secret-" + string(rune('a'+i)))
	}
	s := "inferops-worker-3 assigned ai_input partitions [2 4 5] (generation 2) after a rebalance"
	b.ReportAllocs()
	for b.Loop() {
		_ = Scrub(s)
	}
}
