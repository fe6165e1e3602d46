package pipeline

import "testing"

// FuzzParseSource: the inferops-source header comes back from Kafka, where
// any producer may have written it. What ParseSource accepts must be what
// AppendSource writes for it.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"ai_input/3/1234", "a/b/c/0/0", "x/-1/2", "/1/2", "t/1/", "t/99999999999/1", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		topic, p, o, ok := ParseSource(b)
		if !ok {
			return
		}
		if p < 0 || o < 0 || topic == "" {
			t.Fatalf("accepted %q as %q/%d/%d", b, topic, p, o)
		}
		if again := AppendSource(nil, topic, p, o); string(again) != string(b) {
			// Leading zeros and '+' read as the same number; the topic
			// must still be exact.
			t2, p2, o2, ok2 := ParseSource(again)
			if !ok2 || t2 != topic || p2 != p || o2 != o {
				t.Fatalf("%q -> %q/%d/%d -> %q", b, topic, p, o, again)
			}
		}
	})
}
