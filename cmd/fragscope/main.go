// Command fragscope traces Linux memory fragmentation and high-order
// allocation failures, and ties failing namespace syscalls to their cause.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	if err := app.RunContext(ctx, reorderArgs(app, os.Args)); err != nil {
		fmt.Fprintf(os.Stderr, "fragscope: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// newApp is the command line: main runs it, tests walk its commands.
func newApp() *cli.App {
	return withCompletion(&cli.App{
		Name:    "fragscope",
		Usage:   "trace memory fragmentation and high-order allocation failures",
		Version: version,
		Commands: []*cli.Command{
			watchCommand(),
			agentCommand(),
			topCommand(),
			recordCommand(),
			replayCommand(),
			exportCommand(),
			incidentsCommand(),
			explainCommand(),
			reportCommand(),
			snapshotCommand(),
			doctorCommand(),
		},
		HideHelpCommand: true,
	})
}

// exitCoder lets a command choose its exit status (doctor's verdict).
type exitCoder interface{ ExitCode() int }

func exitCode(err error) int {
	if ec, ok := err.(exitCoder); ok {
		return ec.ExitCode()
	}
	return 1
}
