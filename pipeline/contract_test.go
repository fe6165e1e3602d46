package pipeline

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		in        string
		topic     string
		partition int32
		offset    int64
		ok        bool
	}{
		{"ai_input/3/1234", "ai_input", 3, 1234, true},
		{"a/b/c/0/0", "a/b/c", 0, 0, true}, // topics may not hold '/', but a reader must not choke on one
		{"ai_input/3", "", 0, 0, false},
		{"/3/4", "", 0, 0, false},
		{"ai_input/-1/4", "", 0, 0, false},
		{"ai_input/3/x", "", 0, 0, false},
		{"", "", 0, 0, false},
	}
	for _, tt := range tests {
		topic, p, o, ok := ParseSource([]byte(tt.in))
		if ok != tt.ok || topic != tt.topic || p != tt.partition || o != tt.offset {
			t.Errorf("ParseSource(%q) = %q %d %d %v, want %q %d %d %v", tt.in, topic, p, o, ok, tt.topic, tt.partition, tt.offset, tt.ok)
		}
		if tt.ok {
			if back := string(AppendSource(nil, topic, p, o)); back != tt.in {
				t.Errorf("AppendSource round trip: %q -> %q", tt.in, back)
			}
		}
	}
}

func TestDeadLetterHeaders(t *testing.T) {
	get := func(hs []Header, k string) (string, bool) {
		for _, h := range hs {
			if string(h.Key) == k {
				return string(h.Value), true
			}
		}
		return "", false
	}
	hs := DeadLetterHeaders(&RecordError{Reason: ReasonWrongWidth, Detail: "2 features, the model wants 3"}, "ai_input", 7, 42, 100, nil)
	if v, _ := get(hs, HeaderError); v != ReasonWrongWidth {
		t.Errorf("%s = %q", HeaderError, v)
	}
	if v, _ := get(hs, HeaderSource); v != "ai_input/7/42" {
		t.Errorf("%s = %q", HeaderSource, v)
	}
	if v, _ := get(hs, HeaderErrorDetail); v != "2 features, the model wants 3" {
		t.Errorf("%s = %q", HeaderErrorDetail, v)
	}
	if _, ok := get(hs, HeaderTruncated); ok {
		t.Errorf("a small record must not be marked truncated")
	}
	if _, ok := get(hs, HeaderRedrives); ok {
		t.Errorf("a record never replayed must carry no redrive count")
	}
	hs = DeadLetterHeaders(&RecordError{Reason: ReasonWrongWidth}, "ai_input", 7, 42, 100, []byte("2"))
	if v, _ := get(hs, HeaderRedrives); v != "2" {
		t.Errorf("%s = %q, want the input's count carried over", HeaderRedrives, v)
	}

	big := make([]byte, DLQMaxValue+10)
	over := &RecordError{Reason: ReasonOversized}
	hs = DeadLetterHeaders(over, "ai_input", 0, 1, len(big), nil)
	if v, _ := get(hs, HeaderTruncated); v != "65546" {
		t.Errorf("%s = %q, want the original size", HeaderTruncated, v)
	}
	if _, ok := get(hs, HeaderErrorDetail); ok {
		t.Errorf("no detail header without a detail")
	}
	if n := len(DeadLetterValue(big, over)); n != DLQMaxValue {
		t.Errorf("oversized copy is %d bytes, want %d", n, DLQMaxValue)
	}
	// Only oversized records are cut: a large record refused for another
	// reason keeps every byte for the redrive.
	if n := len(DeadLetterValue(big, &RecordError{Reason: ReasonInvalidJSON})); n != len(big) {
		t.Errorf("invalid_json copy is %d bytes, want all %d", n, len(big))
	}
}

func TestReasons(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons {
		if seen[r] || !IsReason(r) || strings.ContainsAny(r, " \t") {
			t.Errorf("reason %q: duplicate or not a reason", r)
		}
		seen[r] = true
	}
	for _, k := range []string{"predict", "produce", "consume", ""} {
		if IsReason(k) {
			t.Errorf("%q is a failure kind, not a dead-letter reason", k)
		}
	}
}

func TestRecordWritersBuildParseableRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := []byte(strings.Repeat("x", 4096))
	for _, size := range []int{0, 200, 2048} {
		b := []byte{'{'}
		b = AppendKey(b, FieldID)
		b = AppendJSONString(b, `req-"1"`)
		b = AppendKey(b, "stream")
		b = append(b, '7')
		b = NewSynth(seedSchema(t, 8)).AppendInputs(b, rng)
		b = ClosePadded(b, size, fill)
		if size >= 200 && len(b) != size {
			t.Errorf("padded to %d, want %d: %s", len(b), size, b)
		}
		if !json.Valid(b) {
			t.Fatalf("not JSON: %s", b)
		}
		var rec Values
		if rerr := seedSchema(t, 8).Parse(b, &rec); rerr != nil {
			t.Fatalf("%v: %s", rerr, b)
		}
		if string(rec.ID) != `"req-\"1\""` || len(rec.Float32s(0)) != 8 {
			t.Errorf("parsed %q %v", rec.ID, rec.Float32s(0))
		}
	}
}

func TestLevelText(t *testing.T) {
	for _, l := range []Level{Info, Warn, Error} {
		b, _ := l.MarshalText()
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Errorf("%v -> %s -> %v (%v)", l, b, back, err)
		}
	}
	var l Level
	if err := l.UnmarshalText([]byte("fatal")); err == nil {
		t.Error("unknown level accepted")
	}
	ev, err := json.Marshal(Event{Source: SourceWorker, Kind: KindScale, Level: Warn, Message: "workers 4 -> 0"})
	if err != nil || !strings.Contains(string(ev), `"level":"warn"`) || !strings.Contains(string(ev), `"source":"worker"`) {
		t.Errorf("event JSON %s (%v)", ev, err)
	}
}

func TestTopicsAreTheSeeds(t *testing.T) {
	want := map[string]int32{DefaultInput: 12, DefaultOutput: 12, DefaultDLQ: 3}
	ts := Topics(DefaultRetention)
	if len(ts) != len(want) {
		t.Fatalf("%d topics", len(ts))
	}
	for _, s := range ts {
		if err := s.Validate(); err != nil || want[s.Name] != s.Partitions {
			t.Errorf("%s: %d partitions (%v)", s.Name, s.Partitions, err)
		}
		if s.Configs["retention.ms"] != "259200000" || s.Configs["max.message.bytes"] == "" {
			t.Errorf("%s configs %v: want the seed's 72 h and a record size limit", s.Name, s.Configs)
		}
	}
}

func TestParseRedrives(t *testing.T) {
	for _, tt := range []struct {
		in string
		n  int
		ok bool
	}{
		{"0", 0, true}, {"3", 3, true}, {"007", 7, true}, {"1048576", 1 << 20, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.0", 0, false}, {" 1", 0, false},
		{"1048577", 0, false}, {"99999999", 0, false}, {"x", 0, false},
	} {
		n, ok := ParseRedrives([]byte(tt.in))
		if ok != tt.ok || (ok && n != tt.n) {
			t.Errorf("ParseRedrives(%q) = %d %v, want %d %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
}
