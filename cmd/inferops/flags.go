package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// newFlagSet returns a FlagSet whose --help prints the summary, an optional
// longer explanation and every flag with the environment variable it reads.
func newFlagSet(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: inferops %s\n", synopsis)
		if help != "" {
			fmt.Fprintf(w, "\n%s\n", strings.TrimRight(help, "\n"))
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "[]" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s\n      %s%s [$%s]\n", f.Name, f.Usage, def, envName(f.Name))
		})
	}
	return fs
}

// envName is the environment variable that backs a flag: --kafka-addr reads
// INFEROPS_KAFKA_ADDR.
func envName(flagName string) string {
	return "INFEROPS_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// parseFlags parses args and then fills every flag that was not given on the
// command line from its INFEROPS_* environment variable (flag > env > default).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v (it sets --%s)", envName(f.Name), v, e, f.Name)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (flags start with --; see 'inferops %s --help')", errUsage, fs.Arg(0), fs.Name())
	}
	return nil
}
