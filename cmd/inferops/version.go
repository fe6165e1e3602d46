package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

func init() {
	register(&command{name: "version", summary: "print the version and build information", run: runVersion})
}

func runVersion(_ context.Context, args []string) error {
	fs := newFlagSet("version", "version", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "inferops %s (commit %s, built %s, %s, %s/%s)\n", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
