package main

import (
	"strings"
	"testing"
)

// FuzzSASLUsersFile: --kafka-sasl-users-file is outside text. Every user
// parsed has a name and a password, and no error ever quotes a line of the
// file (it may hold a password).
func FuzzSASLUsersFile(f *testing.F) {
	f.Add([]byte("# users\nalice:s3cret-pass\nbob:other:with:colons\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parseSASLUserLines(nil, "--kafka-sasl-users-file users.txt", data)
		if err != nil {
			if err.Error() != "--kafka-sasl-users-file users.txt: want user:password entries" {
				t.Fatalf("error %q is not the fixed message (it must never quote a line)", err)
			}
			return
		}
		for u, p := range users {
			if u == "" || p == "" || strings.Contains(u, ":") {
				t.Fatalf("user %q password %q", u, p)
			}
		}
	})
}
