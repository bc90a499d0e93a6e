package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/live"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/view"
)

func hookFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "hooks", Value: "default", Usage: "hooks to attach: comma-separated names, 'default' or 'all' (" + probes.HookNames() + ")"},
		&cli.StringFlag{Name: "attach", Value: "auto", Usage: "attach mechanism: 'auto', a mechanism for every hook that has it (kprobe, fentry, tracepoint, raw_tp, tp_btf), or hook=mechanism,..."},
		&cli.StringFlag{Name: "ready-file", Usage: "write this file once every hook is attached"},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until SIGINT/SIGTERM)"},
		&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "refresh and counter-poll interval"},
		&cli.StringFlag{Name: "attribution", Value: "on", Hidden: true, Usage: "per-cgroup allocation counters: on (unmovable, reclaimable, high-order, failed), off, or all (every allocation: benchmarks)"},
		&cli.StringFlag{Name: "cri-endpoint", Usage: "CRI socket for pod names and namespaces (default: the usual containerd and CRI-O sockets; skipped when unreachable)"},
		&cli.StringFlag{Name: "cgroup-mode", Value: "auto", Usage: "attribute to the cgroup v2 id ('v2') or the v1 memory cgroup ('v1'); 'auto' picks v1 on v1 and hybrid hosts"},
		&cli.StringFlag{Name: "node-name", Usage: "the node's name in every record (default: $NODE_NAME, else the host name)"},
		&cli.DurationFlag{Name: "stall-threshold", Value: time.Second, Usage: "report a namespace syscall, or a task in the cgroup v1 memcg OOM wait, that lasts this long while it lasts, and again when it ends; 0 turns it off"},
		&cli.BoolFlag{Name: "verbose", Usage: "also print the verifier's whole log for every mechanism the kernel refused (to stderr)"},
		&cli.StringFlag{Name: "kmsg", Value: "auto", Usage: "also follow /dev/kmsg, the kernel's own failure reports: 'auto' (when readable), 'on', 'off'; with '--hooks none' or where BPF cannot run it is the source of incidents"},
	}
}

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "trace live: free blocks, allocation failures with stacks, slab/netns creation, failed namespace syscalls",
		Flags: append(hookFlags(),
			&cli.BoolFlag{Name: "json", Usage: "stream newline-delimited JSON (docs/json.md) instead of the terminal view"},
			&cli.StringFlag{Name: "record", Usage: "also record everything to this trace file (see fragscope record)"},
		),
		Action: func(c *cli.Context) error {
			var v view.View
			if c.Bool("json") {
				v = view.NewJSON(os.Stdout)
			} else {
				v = view.NewTerminal(os.Stdout, isTerminal(os.Stdout))
			}
			return runLive(c, v, c.String("record"))
		},
	}
}

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:  "record",
		Usage: "record a live session to a trace file that `fragscope replay` turns into the same views anywhere",
		Flags: append(hookFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "trace file to write (created 0600)"},
		),
		Action: func(c *cli.Context) error { return runLive(c, nil, c.String("output")) },
	}
}

// liveOptions maps the hook flags to a live session's options.
func liveOptions(c *cli.Context) live.Options {
	return live.Options{
		Hooks: c.String("hooks"), Attach: c.String("attach"), Interval: c.Duration("interval"),
		Attribution: c.String("attribution"), CRIEndpoint: c.String("cri-endpoint"),
		CgroupMode: c.String("cgroup-mode"), NodeName: c.String("node-name"), Version: version, Kmsg: c.String("kmsg"),
		StallThreshold: c.Duration("stall-threshold"),
		Warn:           func(msg string) { fmt.Fprintf(os.Stderr, "fragscope: %s\n", msg) },
	}
}

// runLive attaches the hooks and drives the live source into the pipeline
// (view and/or recorder) until the context ends or --duration passes.
func runLive(c *cli.Context, v view.View, recordPath string) (err error) {
	// The output first: a path that cannot be written fails in one line
	// before anything is attached.
	var rec *trace.Writer
	if recordPath != "" {
		if rec, err = trace.Create(recordPath); err != nil {
			return err
		}
		defer func() {
			events, bytes := rec.Stats()
			if cerr := rec.Close(); cerr != nil && err == nil {
				err = cerr
			}
			fmt.Fprintf(os.Stderr, "fragscope: recorded %d events, %d bytes\n", events, bytes)
		}()
	}
	ls, err := live.Open(c.Context, liveOptions(c))
	if ls != nil {
		printAttachReport(os.Stderr, ls.Status)
		if c.Bool("verbose") {
			printVerifierLogs(os.Stderr, ls.Logs)
		}
	}
	if err != nil {
		return err
	}
	defer ls.Close()

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	opt := pipeline.Options{View: v, Cancel: cancel}
	if rec != nil {
		opt.Tap = rec
	}
	var prog *pipeline.Progress
	if rec != nil && v == nil && isTerminal(os.Stderr) {
		prog = &pipeline.Progress{W: os.Stderr, Start: time.Now(), Bytes: func() int64 { _, b := rec.Stats(); return b }}
		opt.OnEvent = prog.Event
	}
	p := pipeline.New(opt)

	var readyErr error
	if f := c.String("ready-file"); f != "" {
		// Written once the counters' baseline is taken, not at attach:
		// a workload started on it is counted in full.
		ls.Source.Ready = func() {
			if err := os.WriteFile(f, []byte("ready\n"), 0o644); err != nil {
				readyErr = fmt.Errorf("write ready file: %w", err)
				cancel()
			}
		}
	}
	if d := c.Duration("duration"); d > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, d)
		defer cancelT()
	}
	err = p.Run(ctx, ls.Source)
	if prog != nil {
		prog.Done()
	}
	if err != nil {
		return err
	}
	return readyErr
}

func printAttachReport(w *os.File, st []event.HookStatus) {
	for _, s := range st {
		if s.Attached {
			fmt.Fprintf(w, "fragscope: %-12s attached via %-10s %s", s.Hook, s.Mechanism, s.Target)
			if s.Reason != "" { // a better mechanism was refused: say why
				fmt.Fprintf(w, " (%s)", s.Reason)
			}
			fmt.Fprintln(w)
		} else {
			fmt.Fprintf(w, "fragscope: %-12s NOT attached: %s\n", s.Hook, s.Reason)
		}
	}
}

// printVerifierLogs writes the verifier's logs of refused mechanisms
// (--verbose, doctor -v): the reasons above are their one-line summaries.
func printVerifierLogs(w io.Writer, logs []probes.VerifierLog) {
	for _, l := range logs {
		fmt.Fprintf(w, "fragscope: verifier log of %s via %s:\n", l.Hook, l.Mechanism)
		for _, line := range strings.Split(strings.TrimRight(l.Log, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}
