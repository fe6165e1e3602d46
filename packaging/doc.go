// Package packaging holds the RPM (nfpm), tarball and systemd files for
// installing inferops on RHEL 8, and the tests that check what they build:
// a static binary, the RPM's file list and modes, the hardened unit and the
// default config. There is no Go code to import here.
package packaging
