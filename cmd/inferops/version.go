package main

import (
	"context"
	"fmt"
	"runtime"
)

func versionCommand() (*cmdFlags, runFunc) {
	return newFlags("version", "version", ""), func(_ context.Context, std stdio) error {
		fmt.Fprintf(std.out, "inferops %s (commit %s, built %s, %s, %s/%s)\n", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
}
