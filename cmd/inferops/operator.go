package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/charmbracelet/x/term"

	"github.com/inferops/inferops/cluster"
	"github.com/inferops/inferops/pipeline"
)

// What the operator actions (`dlq`, `offsets`) share: the embedded
// default, --read-only, and asking before changing something.

// operatorKafka is the Kafka config an operator command uses: --brokers,
// or without it the embedded broker of `inferops serve`. explain turns a
// refused connection to that default into the fix.
func operatorKafka(kc *cluster.Config) (cfg cluster.Config, explain func(error) error, err error) {
	cfg = *kc
	embedded := len(cfg.Brokers) == 0
	if embedded {
		cfg.Brokers = []string{pipeline.DefaultKafkaAddr}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	explain = func(err error) error {
		if err != nil && embedded && errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("no embedded broker at %s: start it with `inferops serve` (or `make run`), or pass --brokers", pipeline.DefaultKafkaAddr)
		}
		return err
	}
	return cfg, explain, nil
}

// refuseReadOnly is the error of an action under --read-only.
func refuseReadOnly(what, instead string) error {
	return fmt.Errorf("refused: --read-only (INFEROPS_READ_ONLY) forbids %s; %s", what, instead)
}

// confirm asks question on a terminal and reports a yes. Off a terminal
// (a script, a pipe) nobody can answer, and the command line is the
// answer: it proceeds.
func confirm(std stdio, in io.Reader, question string) bool {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) || !isTerminal(std.err) {
		return true
	}
	fmt.Fprintf(std.err, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// errDeclined is a question answered no: nothing was changed.
var errDeclined = errors.New("nothing changed: not confirmed (--yes answers yes)")
