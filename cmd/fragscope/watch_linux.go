package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/kallsyms"
	"github.com/fragscope/fragscope/internal/privs"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
	"github.com/fragscope/fragscope/internal/source"
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

// runLive attaches the hooks and drives the live source into the pipeline
// (view and/or recorder) until the context ends or --duration passes.
func runLive(c *cli.Context, v view.View, recordPath string) error {
	if c.Duration("interval") <= 0 {
		return fmt.Errorf("--interval must be positive")
	}
	hooks, err := probes.ParseHooks(c.String("hooks"))
	if err != nil {
		return err
	}
	modes, err := probes.ParseModes(c.String("attach"))
	if err != nil {
		return err
	}
	if err := privs.Check(); err != nil {
		return err
	}

	var noAttr, attrAll bool
	switch a := c.String("attribution"); a {
	case "on":
	case "off":
		noAttr = true
	case "all":
		attrAll = true
	default:
		return fmt.Errorf("--attribution %q: use on, off or all", a)
	}
	v1, cgroups, err := cgroupSetup(c.String("cgroup-mode"))
	if err != nil {
		return err
	}
	start, pageblockOrder := sessionStart()
	set, err := probes.Open(probes.Options{
		Hooks: hooks, Modes: modes, PageblockOrder: pageblockOrder,
		CgroupV1Memory:     v1,
		NoAttribution:      noAttr,
		AttributeAll:       attrAll,
		MigrateReclaimable: reclaimableValue(start.Migratetypes),
	})
	if err != nil {
		return err
	}
	defer set.Close()
	printAttachReport(os.Stderr, set.Status)
	if !anyAttached(set.Status) {
		return fmt.Errorf("no hook attached; see the reasons above, or run `fragscope doctor`")
	}

	syms, err := kallsyms.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fragscope: stacks will show raw addresses: %v\n", err)
	}
	live := &source.Live{
		Set:          set,
		Start:        start,
		Interval:     c.Duration("interval"),
		TakeSnapshot: takeSnapshot,
		Cgroups:      cgroups,
		Pod:          podLookup(c.Context, c.String("cri-endpoint")),
	}
	if syms != nil {
		live.Symbolize = syms.FormatFrame
	}

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	var rec *trace.Writer
	if recordPath != "" {
		if rec, err = trace.Create(recordPath); err != nil {
			return err
		}
	}
	p := newPipeline(v, rec, cancel)
	if rec != nil && v == nil && isTerminal(os.Stderr) {
		p.prog = &progress{start: time.Now(), rec: rec}
	}

	var readyErr error
	if f := c.String("ready-file"); f != "" {
		// Written once the counters' baseline is taken, not at attach:
		// a workload started on it is counted in full.
		live.Ready = func() {
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
	if err := p.close(live.Run(ctx, p.emit)); err != nil {
		return err
	}
	return readyErr
}

// sessionStart gathers the metadata every recording and view needs about
// this kernel, including its own gfp and migratetype tables.
func sessionStart() (event.Start, uint32) {
	s := event.Start{Version: version, PageSize: uint32(os.Getpagesize())}
	s.Hostname, _ = os.Hostname()
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		s.KernelRelease = unix.ByteSliceToString(uts.Release[:])
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		s.BootID = strings.TrimSpace(string(b))
	}
	flags, mts, err := gfp.LoadRunning()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fragscope: gfp flags will show as numbers: %v\n", err)
	}
	s.GFPFlags, s.Migratetypes = flags, mts
	// x86_64's HPAGE_PMD_ORDER; /proc/pagetypeinfo gives the real value.
	order := uint32(9)
	if snap, err := snapshot.Take(""); err == nil && snap.PageblockOrder > 0 {
		order = uint32(snap.PageblockOrder)
	}
	s.PageblockOrder = uint8(order)
	return s, order
}

func anyAttached(st []event.HookStatus) bool {
	for _, s := range st {
		if s.Attached {
			return true
		}
	}
	return false
}

func printAttachReport(w *os.File, st []event.HookStatus) {
	for _, s := range st {
		if s.Attached {
			fmt.Fprintf(w, "fragscope: %-12s attached via %-10s %s\n", s.Hook, s.Mechanism, s.Target)
		} else {
			fmt.Fprintf(w, "fragscope: %-12s NOT attached: %s\n", s.Hook, s.Reason)
		}
	}
}

// takeSnapshot reads /proc/pagetypeinfo (5-7 ms: the kernel walks every free
// list) only at start and on failures, not every interval.
func takeSnapshot(reason string) (*snapshot.Snapshot, error) {
	return snapshot.TakeWith("", snapshot.Options{SkipPagetypeinfo: reason == "interval"})
}

// reclaimableValue is MIGRATE_RECLAIMABLE on the running kernel (2 since
// 4.4, 1 before), from its own migratetype table; 0 lets the loader default.
func reclaimableValue(mts []string) uint32 {
	for i, n := range mts {
		if strings.EqualFold(n, "reclaimable") {
			return uint32(i)
		}
	}
	return 0
}
