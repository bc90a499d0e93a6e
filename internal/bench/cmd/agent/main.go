// Command agent measures what a running `fragscope agent` costs a node, side
// by side in one run against one agent process:
//
//   - idle CPU (% of one core, utime+stime from /proc/<pid>/stat) and memory
//     (VmRSS, VmHWM), per round, with the machine's own CPU split (busy,
//     idle, steal from /proc/stat) and PSI over the same window, so a reader
//     can tell the agent's cost from the noise of the machine;
//   - flight-recorder growth (bytes per minute of data-dir/segments, and of
//     incidents/) idle and under a packet-ring load, with the page
//     allocations per second the agent counted;
//   - the time of a /metrics scrape with a few cgroups known and with
//     -cgroups real cgroups known, each made to allocate once by a
//     short-lived process.
//
// Rounds alternate an idle window and a load window, so drift of the
// machine falls on both; figures are medians over rounds. It prints a table
// (and, with -json, a JSON summary on stdout with the table on stderr) and
// exits 0 once it has measured something: benchmarks report, they don't gate.
//
//	go run ./internal/bench/cmd/agent [-rounds 3] [-idle 30s] [-load 15s] [-cgroups 4096] [-scrapes 30] [-bin PATH] [-json]
//
// Needs root. The metrics scrape cost without the kernel and HTTP in the way
// is BenchmarkScrape4096Cgroups in internal/metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/fragscope/fragscope/internal/bench"
	"github.com/fragscope/fragscope/internal/cgroup"
)

// cgChildCmd is the hidden first argument that makes this program the
// short-lived process that joins a cgroup and allocates there.
const cgChildCmd = "__cgchild"

type config struct {
	bin         string
	rounds      int
	idle        time.Duration
	load        time.Duration
	settle      time.Duration
	interval    time.Duration
	ringRate    float64
	ringBlocks  int
	cgroups     int
	cgBlock     int
	cgParallel  int
	scrapes     int
	scrapeGap   time.Duration
	idleCgroups time.Duration
	cgroupMode  string
	keep        bool
	json        bool
	verbose     bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == cgChildCmd {
		os.Exit(cgChildMain(os.Args[2:]))
	}
	var cfg config
	flag.StringVar(&cfg.bin, "bin", "", "fragscope binary to measure (default: go build ./cmd/fragscope into a temporary directory)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each is an idle window then a load window")
	flag.DurationVar(&cfg.idle, "idle", 30*time.Second, "idle window per round")
	flag.DurationVar(&cfg.load, "load", 15*time.Second, "packet-ring load window per round (0 skips the load)")
	flag.DurationVar(&cfg.settle, "settle", 5*time.Second, "wait after the agent is ready before the first window, so start-up work (first walks, first segment) is done")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "the agent's --interval")
	flag.Float64Var(&cfg.ringRate, "ring-rate", 20, "packet rings opened and closed per second under load")
	flag.IntVar(&cfg.ringBlocks, "ring-blocks", 16, "256 KiB blocks (order-6 unmovable allocations) per load ring")
	flag.IntVar(&cfg.cgroups, "cgroups", 4096, "cgroups made for the scrape measurement (0 skips it)")
	flag.IntVar(&cfg.cgBlock, "cgroup-block", 64<<10, "bytes of the one-block packet ring each cgroup's process opens (64 KiB: an order-4 unmovable allocation)")
	flag.IntVar(&cfg.cgParallel, "cgroup-parallel", 8, "cgroup processes running at once")
	flag.IntVar(&cfg.scrapes, "scrapes", 30, "timed scrapes of /metrics, before and after the cgroups are made")
	flag.DurationVar(&cfg.scrapeGap, "scrape-gap", 200*time.Millisecond, "pause between timed scrapes")
	flag.DurationVar(&cfg.idleCgroups, "idle-cgroups", 15*time.Second, "idle window with the cgroups known, before they are removed (0 skips it)")
	flag.StringVar(&cfg.cgroupMode, "cgroup-mode", "auto", "hierarchy to make cgroups in and the agent's --cgroup-mode: auto (what the agent would pick), v1 or v2")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the data directory and the agent's log (their path is printed)")
	flag.BoolVar(&cfg.json, "json", false, "print a JSON summary on stdout (the table goes to stderr)")
	flag.BoolVar(&cfg.verbose, "v", false, "log each window as it ends")
	flag.Parse()
	if cfg.rounds < 1 || cfg.idle <= 0 || cfg.scrapes < 1 || cfg.cgParallel < 1 || cfg.ringBlocks < 1 || cfg.ringRate <= 0 {
		fatalf("-rounds, -idle, -scrapes, -cgroup-parallel, -ring-blocks and -ring-rate must be positive")
	}
	if err := run(cfg); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	logf(format, args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "agent bench: "+format+"\n", args...)
}

func run(cfg config) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: the agent loads BPF and the benchmark makes cgroups")
	}
	// SIGINT/SIGTERM end the windows early; the deferred clean-up (agent,
	// cgroups, temporary files) still runs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "fragscope-agent-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep {
			logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	if cfg.bin == "" {
		logf("building fragscope")
		if cfg.bin, err = buildFragscope(dir); err != nil {
			return err
		}
	} else if cfg.bin, err = filepath.Abs(cfg.bin); err != nil {
		return err
	}

	hier, err := pickHierarchy(cfg.cgroupMode)
	if err != nil {
		return err
	}

	rep := &report{Config: cfg.summary(), Kernel: kernelRelease(), CPUs: runtime.NumCPU(), Bin: cfg.bin, CgroupMode: string(hier.mode),
		CgroupMount: hier.mount, AgentCgroupMode: hier.agentFlag(), HZ: bench.ClockTicks()}
	a, err := startAgent(ctx, cfg, dir, hier.agentFlag())
	if err != nil {
		return err
	}
	defer func() {
		if serr := a.stop(); serr != nil && err == nil {
			logf("%v", serr)
		}
	}()
	rep.StartupCPUms, rep.ReadyAfterMs = a.startupCPU(), a.readyAfter.Seconds()*1e3
	logf("agent pid %d ready after %v on %s; settling %v", a.pid, a.readyAfter.Round(time.Millisecond), a.addr, cfg.settle)
	if !sleepCtx(ctx, cfg.settle) {
		return ctx.Err()
	}

	for r := range cfg.rounds {
		for _, kind := range []string{"idle", "load"} {
			d, dest, ring := cfg.idle, &rep.Idle, (*ringLoad)(nil)
			if kind == "load" {
				if cfg.load <= 0 {
					continue
				}
				d, dest, ring = cfg.load, &rep.Load, newRingLoad(cfg.ringRate, uint32(cfg.ringBlocks))
			}
			logf("round %d/%d: %s %v", r+1, cfg.rounds, kind, d)
			w, err := a.window(ctx, cfg, kind, d, ring)
			if err != nil {
				return err
			}
			w.Round = r + 1
			*dest = append(*dest, w)
			if cfg.verbose {
				logf("  %s", w)
			}
		}
	}
	// The idle figures stand for the agent before it knows the benchmark's
	// cgroups: memory at the end of the last round.
	if st, err := bench.ReadStatus(a.pid); err == nil {
		rep.RSSRounds, rep.HWMRounds = st.VmRSS, st.VmHWM
	}

	if cfg.cgroups > 0 {
		if err := measureCgroups(ctx, cfg, a, hier, rep); err != nil {
			rep.CgroupErr = err.Error()
			logf("cgroups: %v", err)
		}
	}
	if st, err := bench.ReadStatus(a.pid); err == nil {
		rep.RSSEnd, rep.HWMEnd = st.VmRSS, st.VmHWM
	}
	if err := a.stop(); err != nil {
		logf("%v", err)
	}
	if cfg.cgroups > 0 && rep.CgroupErr == "" {
		// The recording holds every tick the aggregator read: the cgroups
		// with counts in it are the ones the agent knew.
		rep.Cgroups.KnownInRecording, err = knownInRecording(cfg.bin, a.dataDir, hier.prefix())
		if err != nil {
			logf("reading the recording: %v", err)
			rep.Cgroups.KnownInRecording = -1
		}
	}
	rep.AgentLog = a.logSummary()
	rep.finish()
	return rep.print(cfg)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// hierarchy is where the benchmark makes its cgroups: the one the agent
// attributes by, so a process's allocations land in its own cgroup's counts.
type hierarchy struct {
	mode  cgroup.Mode
	mount string // mount point
	root  string // the mount's root inside the hierarchy ("/" on a host)
}

// pickHierarchy resolves -cgroup-mode the way the agent resolves
// --cgroup-mode (cgroup.Select): on a hybrid host that is the v1 memory
// hierarchy, since the kernel charges memory there.
func pickHierarchy(flagValue string) (hierarchy, error) {
	override, err := cgroup.ParseMode(flagValue)
	if err != nil {
		return hierarchy{}, err
	}
	detected, mounts, err := cgroup.Detect()
	if err != nil {
		return hierarchy{}, err
	}
	mode, err := cgroup.Select(override, detected, mounts)
	if err != nil {
		return hierarchy{}, err
	}
	mount, _, root, err := mounts.Hierarchy(mode)
	if err != nil {
		return hierarchy{}, err
	}
	return hierarchy{mode: mode, mount: mount, root: root}, nil
}

// agentFlag is the --cgroup-mode that makes the agent use this hierarchy.
func (h hierarchy) agentFlag() string {
	if h.mode.MemoryV1() {
		return "v1"
	}
	return "v2"
}

// benchDir is the parent of every cgroup the benchmark makes, one
// subdirectory per run (named by pid, so a stale one is recognized).
func (h hierarchy) benchDir() string { return filepath.Join(h.mount, "fragscope-bench") }

// prefix is how the agent names the benchmark's cgroups: paths in the
// hierarchy, behind the mount's root (cgroup.WithMountRoot).
func (h hierarchy) prefix() string {
	return filepath.Join("/", h.root, "fragscope-bench", fmt.Sprint(os.Getpid())) + "/"
}
