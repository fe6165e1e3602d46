package doctor

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseOSRelease: /etc/os-release is whatever the host has.
func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte("NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"8.9\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseOSRelease(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = r.IsRHEL8()
		for _, v := range []string{r.ID, r.IDLike, r.VersionID, r.PrettyName} {
			if strings.ContainsRune(v, '\n') {
				t.Fatalf("value with a newline: %q", v)
			}
		}
	})
}
