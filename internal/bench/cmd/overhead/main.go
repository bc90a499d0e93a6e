// Command overhead measures what `fragscope watch` costs the machine it
// traces: time added to each kmem:mm_page_alloc event for every attach
// mechanism of the page-allocation hooks, and the CPU and memory of an idle
// tracer. It prints a table with the project's targets and always exits 0
// once it has measured something: benchmarks report, they don't gate.
//
//	go run ./internal/bench/cmd/overhead [-runs 10] [-rounds 5] [-idle 30s] [-bin PATH]
//
// Needs root (or CAP_BPF+CAP_PERFMON) for fragscope. See package bench for
// the method.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/bench"
)

// workloadCmd is the hidden first argument that makes this program the
// workload child, so each timed workload is a process of its own that the
// tracer sees start and end.
const workloadCmd = "__workload"

type config struct {
	bin          string
	runs         int
	rounds       int
	sizeMiB      int
	mechs        []string
	idle         time.Duration
	settle       time.Duration
	readyTimeout time.Duration
	verbose      bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == workloadCmd {
		os.Exit(workloadMain(os.Args[2:]))
	}
	var cfg config
	var mechs string
	flag.StringVar(&cfg.bin, "bin", "", "fragscope binary to measure (default: go build ./cmd/fragscope into a temporary directory)")
	flag.IntVar(&cfg.runs, "runs", 10, "workload runs (mmap+populate+munmap) per condition per round")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds; each times the baseline and every mechanism, in rotating order")
	flag.IntVar(&cfg.sizeMiB, "size", 512, "MiB mapped and populated per workload run")
	flag.StringVar(&mechs, "mechanisms", "raw_tp,tp_btf,tracepoint,raw_tp+noattr,raw_tp+attrall", "conditions to compare: attach mechanisms forced on page_alloc and extfrag, optionally +noattr (per-cgroup counters off) or +attrall (every allocation attributed)")
	flag.DurationVar(&cfg.idle, "idle", 30*time.Second, "how long to measure an idle tracer's CPU and memory (0 skips it)")
	flag.DurationVar(&cfg.settle, "settle", 1500*time.Millisecond, "wait after the ready file before measuring the idle tracer, so its first interval's start-up work is done")
	flag.DurationVar(&cfg.readyTimeout, "ready-timeout", time.Minute, "give up on a tracer that has not written its ready file by then")
	flag.BoolVar(&cfg.verbose, "v", false, "print every round's times")
	flag.Parse()
	for _, m := range strings.Split(mechs, ",") {
		if m = strings.TrimSpace(m); m != "" {
			cfg.mechs = append(cfg.mechs, m)
		}
	}
	if cfg.runs < 1 || cfg.rounds < 1 || cfg.sizeMiB < 1 {
		fatalf("-runs, -rounds and -size must be positive")
	}
	if err := run(cfg); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "overhead: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "overhead: "+format+"\n", args...)
}

// workloadMain is the child: disable THP, run the workload, print each
// run's wall and thread CPU time as a JSON array.
func workloadMain(args []string) int {
	fs := flag.NewFlagSet(workloadCmd, flag.ExitOnError)
	size := fs.Int("size", 512, "MiB")
	runs := fs.Int("runs", 10, "timed runs")
	warmup := fs.Int("warmup", 1, "untimed runs first")
	fs.Parse(args)
	if err := bench.DisableTHP(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ss, err := bench.Populate(*size<<20, *warmup+*runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ss = ss[*warmup:]
	if err := json.NewEncoder(os.Stdout).Encode(ss); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// warmupRuns untimed runs start every workload child: whatever the gap
// before it (a tracer starting takes seconds), the timed runs then find
// memory equally warm. On a VM with free page reporting (virtio-balloon),
// free memory left alone for ~2 s goes back to the host, and touching it
// again costs host page faults.
const warmupRuns = 1

// workload runs the child and returns its timed runs.
func workload(cfg config, runs int) ([]bench.Sample, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, workloadCmd, "-size", fmt.Sprint(cfg.sizeMiB), "-runs", fmt.Sprint(runs), "-warmup", fmt.Sprint(warmupRuns))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("workload: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var ss []bench.Sample
	if err := json.Unmarshal(out, &ss); err != nil {
		return nil, fmt.Errorf("workload output: %w", err)
	}
	if len(ss) != runs {
		return nil, fmt.Errorf("workload: %d runs reported, want %d", len(ss), runs)
	}
	return ss, nil
}

// tracer is one running `fragscope watch --json`.
type tracer struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	mu      sync.Mutex
	counts  []bench.Counts // read so far; complete once done is closed
	tick    chan bench.Counts
	readErr error
	done    chan struct{} // closed when stdout is fully read
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTracer starts fragscope watch and waits for its ready file.
func startTracer(cfg config, dir string, extra ...string) (*tracer, error) {
	ready := filepath.Join(dir, fmt.Sprintf("ready-%d", time.Now().UnixNano()))
	args := append([]string{"watch", "--json", "--interval", "1s", "--ready-file", ready}, extra...)
	t := &tracer{cmd: exec.Command(cfg.bin, args...), stderr: &syncBuffer{}, tick: make(chan bench.Counts, 1),
		done: make(chan struct{}), exited: make(chan struct{})}
	t.cmd.Stderr = t.stderr
	stdout, err := t.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.bin, err)
	}
	go func() {
		t.readErr = bench.ScanCounts(stdout, func(c bench.Counts) {
			t.mu.Lock()
			t.counts = append(t.counts, c)
			t.mu.Unlock()
			if c.Type == "interval" {
				select { // keep only the latest
				case <-t.tick:
				default:
				}
				t.tick <- c
			}
		})
		io.Copy(io.Discard, stdout) // after a parse error, keep the pipe drained
		close(t.done)
	}()
	go func() {
		<-t.done
		t.waitErr = t.cmd.Wait()
		close(t.exited)
	}()
	deadline := time.After(cfg.readyTimeout)
	for {
		if _, err := os.Stat(ready); err == nil {
			return t, nil
		}
		select {
		case <-t.exited:
			return nil, fmt.Errorf("fragscope %s exited before it was ready (%v): %s", strings.Join(args, " "), t.waitErr, lastLines(t.stderr.String(), 6))
		case <-deadline:
			t.stop()
			return nil, fmt.Errorf("fragscope not ready after %v: %s", cfg.readyTimeout, lastLines(t.stderr.String(), 6))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGINT, the way a user ends a session, and waits for the
// final interval and summary; SIGKILL after 15 s.
func (t *tracer) stop() error {
	t.cmd.Process.Signal(os.Interrupt)
	select {
	case <-t.exited:
	case <-time.After(15 * time.Second):
		t.cmd.Process.Kill()
		<-t.exited
		return fmt.Errorf("fragscope did not exit within 15 s of SIGINT; killed")
	}
	if t.waitErr != nil {
		return fmt.Errorf("fragscope: %v: %s", t.waitErr, lastLines(t.stderr.String(), 4))
	}
	return t.readErr
}

// nextInterval waits for the tracer's next interval object, so that a
// workload started now begins with a fresh interval.
func (t *tracer) nextInterval(timeout time.Duration) (bench.Counts, error) {
	select {
	case <-t.tick: // an older one nobody waited for
	default:
	}
	select {
	case c := <-t.tick:
		return c, nil
	case <-t.done:
		return bench.Counts{}, fmt.Errorf("fragscope ended its output: %s", lastLines(t.stderr.String(), 4))
	case <-time.After(timeout):
		return bench.Counts{}, fmt.Errorf("no interval object from fragscope within %v", timeout)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// traced is one mechanism's measurement in one round.
type traced struct {
	samples   []bench.Sample
	events    uint64 // order-0 allocations fragscope counted over the workload, warm-up included
	intervals int
	attached  string // page_alloc's mechanism as fragscope reported it
	round     int
}

// runTraced measures one condition: a mechanism, optionally with an
// attribution variant ("raw_tp+noattr": per-cgroup counters off;
// "raw_tp+attrall": every allocation attributed, the worst case).
func runTraced(cfg config, dir, cond string) (traced, error) {
	var r traced
	mech, variant, _ := strings.Cut(cond, "+")
	args := []string{"--attach", "page_alloc=" + mech + ",extfrag=" + mech}
	switch variant {
	case "":
	case "noattr":
		args = append(args, "--attribution", "off")
	case "attrall":
		args = append(args, "--attribution", "all")
	default:
		return r, fmt.Errorf("condition %q: unknown variant %q (noattr, attrall)", cond, variant)
	}
	t, err := startTracer(cfg, dir, args...)
	if err != nil {
		return r, err
	}
	// Start at a Tick: the interval holding the tracer's start-up has
	// closed, and the counted intervals hug the workload.
	first, err := t.nextInterval(5 * time.Second)
	if err != nil {
		t.stop()
		return r, err
	}
	since := first.End
	r.samples, err = workload(cfg, cfg.runs)
	serr := t.stop()
	if err != nil {
		return r, err
	}
	if serr != nil {
		return r, serr
	}
	rep := bench.ParseAttachReport(t.stderr.String())
	pa := rep["page_alloc"]
	if !pa.Attached {
		return r, fmt.Errorf("page_alloc not attached via %s: %s", mech, pa.Reason)
	}
	r.attached = pa.Mechanism
	if ef := rep["extfrag"]; ef.Attached && ef.Mechanism != pa.Mechanism {
		r.attached += "/extfrag:" + ef.Mechanism
	}
	r.events, r.intervals = bench.Order0Since(t.counts, since)
	return r, nil
}

func buildFragscope(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	gomod, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return "", fmt.Errorf("not inside the fragscope module: run from the repository or pass -bin")
	}
	bin := filepath.Join(dir, "fragscope")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/fragscope")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fragscope: %v\n%s", err, out)
	}
	return bin, nil
}

type idleResult struct {
	err        error
	wall       time.Duration
	cpuPct     float64       // over cfg.idle, from cfg.settle after the ready file
	startupCPU time.Duration // CPU time until then
	hwm, rss   uint64
	lines      string
}

func measureIdle(cfg config, dir string) idleResult {
	var r idleResult
	t, err := startTracer(cfg, dir)
	if err != nil {
		r.err = err
		return r
	}
	pid := t.cmd.Process.Pid
	hz := bench.ClockTicks()
	time.Sleep(cfg.settle) // let the first interval's start-up work finish
	s0, err := bench.ReadStat(pid)
	t0 := time.Now()
	if err == nil {
		time.Sleep(cfg.idle)
		var s1 bench.ProcStat
		s1, err = bench.ReadStat(pid)
		r.wall = time.Since(t0)
		if err == nil {
			r.cpuPct = bench.CPUPercent(s1.CPUTicks()-s0.CPUTicks(), hz, r.wall)
			r.startupCPU = time.Duration(s0.CPUTicks()) * time.Second / time.Duration(hz)
			var st bench.ProcStatus
			st, err = bench.ReadStatus(pid)
			r.hwm, r.rss = st.VmHWM, st.VmRSS
		}
	}
	serr := t.stop()
	if err == nil {
		err = serr
	}
	r.err = err
	var att []string
	for _, a := range bench.ParseAttachReport(t.stderr.String()) {
		if a.Attached {
			att = append(att, a.Hook+"="+a.Mechanism)
		}
	}
	sort.Strings(att)
	r.lines = strings.Join(att, ",")
	return r
}

// medians is one condition's median run in one round, by each clock.
type medians struct{ wall, cpu float64 }

func medianOf(ss []bench.Sample) medians {
	var w, c []float64
	for _, s := range ss {
		w = append(w, float64(s.Wall))
		c = append(c, float64(s.CPU))
	}
	return medians{bench.Median(w), bench.Median(c)}
}

func run(cfg config) error {
	dir, err := os.MkdirTemp("", "fragscope-overhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if cfg.bin == "" {
		logf("building fragscope")
		if cfg.bin, err = buildFragscope(dir); err != nil {
			return err
		}
	} else if cfg.bin, err = filepath.Abs(cfg.bin); err != nil {
		return err
	}

	pagesPerRun := float64(cfg.sizeMiB<<20) / float64(os.Getpagesize())
	// One untimed child first: the first mapping of the session pays for
	// whatever the machine had to reclaim or compact to get that much free.
	if _, err := workload(cfg, 1); err != nil {
		return err
	}

	psi0, psiErr := bench.CPUPressure()
	t0 := time.Now()
	conds := append([]string{"baseline"}, cfg.mechs...)
	base := make([]medians, cfg.rounds)
	tr := map[string][]traced{}
	failed := map[string]error{}
	for r := 0; r < cfg.rounds; r++ {
		for i := range conds {
			c := conds[(i+r)%len(conds)] // rotate the order so no condition always runs first
			if failed[c] != nil {
				continue
			}
			logf("round %d/%d: %s", r+1, cfg.rounds, c)
			if c == "baseline" {
				ss, err := workload(cfg, cfg.runs)
				if err != nil {
					return err
				}
				base[r] = medianOf(ss)
				if cfg.verbose {
					logf("  baseline: %s", fmtSamples(ss, pagesPerRun))
				}
				continue
			}
			res, err := runTraced(cfg, dir, c)
			if err != nil {
				logf("  %s: %v", c, err)
				failed[c] = err
				continue
			}
			if cfg.verbose {
				logf("  %s: %s; %d order-0 allocs over %d intervals", c, fmtSamples(res.samples, pagesPerRun), res.events, res.intervals)
			}
			res.round = r
			tr[c] = append(tr[c], res)
		}
	}
	pressure := -1.0
	if psi1, err := bench.CPUPressure(); err == nil && psiErr == nil {
		pressure = float64(psi1-psi0) / float64(time.Since(t0)) * 100
	}

	var idle idleResult
	if cfg.idle > 0 {
		logf("idle tracer for %v", cfg.idle)
		idle = measureIdle(cfg, dir)
	}

	printReport(os.Stdout, cfg, pagesPerRun, pressure, base, tr, failed, idle)
	return nil
}

func fmtSamples(ss []bench.Sample, pages float64) string {
	var w, c []string
	for _, s := range ss {
		w = append(w, fmt.Sprintf("%.0f", float64(s.Wall)/pages))
		c = append(c, fmt.Sprintf("%.0f", float64(s.CPU)/pages))
	}
	return "wall ns/page [" + strings.Join(w, " ") + "] cpu ns/page [" + strings.Join(c, " ") + "]"
}

func printReport(out io.Writer, cfg config, pagesPerRun, pressure float64, base []medians, tr map[string][]traced, failed map[string]error, idle idleResult) {
	var uts unix.Utsname
	unix.Uname(&uts)
	fmt.Fprintf(out, "\nfragscope overhead  kernel %s, %d CPUs, %s\n", unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(), cfg.bin)
	fmt.Fprintf(out, "workload: mmap %d MiB anonymous, MAP_POPULATE, munmap; THP disabled (PR_SET_THP_DISABLE) so each 4 KiB page is one order-0 mm_page_alloc\n", cfg.sizeMiB)
	fmt.Fprintf(out, "          %.0f pages/run, %d timed runs (after %d untimed) per condition per round, %d rounds interleaved;\n", pagesPerRun, cfg.runs, warmupRuns, cfg.rounds)
	fmt.Fprintf(out, "          per-round medians, then the median over rounds of each round's difference to its own baseline\n")
	fmt.Fprintf(out, "tracer:   fragscope watch --json --interval 1s --attach page_alloc=<m>,extfrag=<m> (default hooks)\n")
	if pressure >= 0 {
		fmt.Fprintf(out, "CPU pressure during the runs (PSI some): %.0f%% of the time a task waited for a CPU", pressure)
		if pressure > 10 {
			fmt.Fprintf(out, ": the machine was busy, wall-time figures are noisy; the thread-CPU figures are the reliable ones")
		}
		fmt.Fprintln(out)
	}

	var fallback, noisy bool
	for _, clock := range []string{"wall", "cpu"} {
		var baseNs []float64
		for _, b := range base {
			v := b.wall
			if clock == "cpu" {
				v = b.cpu
			}
			if v > 0 {
				baseNs = append(baseNs, v/pagesPerRun)
			}
		}
		title := "wall time of each run"
		if clock == "cpu" {
			title = "CPU time of the workload thread (user+system, CLOCK_THREAD_CPUTIME_ID)"
		}
		fmt.Fprintf(out, "\n%s\n", title)
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "condition\tattached\tns/page\tadded ns/event\t(rounds min..max)\ttarget\t\tslowdown %\ttarget\t\tevents/run\tevents from")
		fmt.Fprintf(w, "baseline\t-\t%s\t\t(%s..%s ns/page)\t\t\t\t\t\t\t\n", bench.Num(bench.Median(baseNs), 1),
			bench.Num(slices.Min(baseNs), 0), bench.Num(slices.Max(baseNs), 0))
		for _, m := range cfg.mechs {
			if len(tr[m]) == 0 {
				fmt.Fprintf(w, "%s\tFAILED\t-\t-\t\t%s\tn/a\t-\t%s\tn/a\t-\t\n", m, bench.TargetAddedNs, bench.TargetSlowdown)
				continue
			}
			pairs, fb := pairRounds(clock, pagesPerRun, cfg.runs, base, tr[m])
			source := "fragscope JSON"
			if fb {
				source, fallback = "pages (fallback)", true
			}
			sum := bench.Summarize(pairs, pagesPerRun)
			verdict := bench.TargetAddedNs.Verdict(sum.AddedNsPerEvent)
			if sum.AddedMax-sum.AddedMin > bench.TargetAddedNs.Limit {
				verdict += "*"
				noisy = true
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t(%s..%s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m, tr[m][0].attached,
				bench.Num(sum.TracedNsPerPage, 1),
				bench.Num(sum.AddedNsPerEvent, 1), bench.Num(sum.AddedMin, 0), bench.Num(sum.AddedMax, 0), bench.TargetAddedNs, verdict,
				bench.Num(sum.SlowdownPct, 2), bench.TargetSlowdown, bench.TargetSlowdown.Verdict(sum.SlowdownPct),
				bench.Num(sum.EventsPerRun, 0), source)
		}
		w.Flush()
	}
	for _, m := range cfg.mechs {
		if err := failed[m]; err != nil {
			fmt.Fprintf(out, "  %s failed (%d of %d rounds measured): %v\n", m, len(tr[m]), cfg.rounds, err)
		}
	}
	fmt.Fprintf(out, "  events/run: order-0 allocations in fragscope's JSON intervals overlapping the workload, over runs\n")
	fmt.Fprintf(out, "  (system-wide, so also page tables and background allocations; the added ns are divided by these)\n")
	if noisy {
		fmt.Fprintf(out, "  * the rounds disagree by more than the target itself: that verdict is within this machine's noise\n")
	}
	if fallback {
		fmt.Fprintf(out, "  where marked fallback, fragscope's JSON had no order-0 counts for the window and pages/run was used\n")
	}

	if cfg.idle <= 0 {
		return
	}
	fmt.Fprintln(out)
	if idle.err != nil {
		fmt.Fprintf(out, "idle tracer: FAILED: %v\n", idle.err)
		return
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "idle tracer: fragscope watch --json (%s)\tmeasured\ttarget\t\n", idle.lines)
	fmt.Fprintf(w, "CPU %% of one core, utime+stime over %v once ready\t%s\t%s\t%s\n", idle.wall.Round(time.Millisecond),
		bench.Num(idle.cpuPct, 2), bench.TargetIdleCPU, bench.TargetIdleCPU.Verdict(idle.cpuPct))
	fmt.Fprintf(w, "peak RSS MiB (VmHWM; VmRSS at end %s)\t%s\t%s\t%s\n", bench.Num(bench.MiB(idle.rss), 1),
		bench.Num(bench.MiB(idle.hwm), 1), bench.TargetRSS, bench.TargetRSS.Verdict(bench.MiB(idle.hwm)))
	fmt.Fprintf(w, "CPU time to start (until %v after the ready file)\t%v\t\t\n", cfg.settle, idle.startupCPU)
	w.Flush()
}

// pairRounds pairs each traced round with the baseline timed in the same
// round, by the given clock ("wall" or "cpu"). Events per run come from
// fragscope's count, or from the page count (fallback true) when its JSON
// had none for the workload window.
func pairRounds(clock string, pagesPerRun float64, runs int, base []medians, rounds []traced) (pairs []bench.Pair, fallback bool) {
	for _, res := range rounds {
		events := float64(res.events) / float64(runs+warmupRuns)
		if res.intervals == 0 || res.events == 0 {
			events, fallback = pagesPerRun, true
		}
		b, t := base[res.round], medianOf(res.samples)
		p := bench.Pair{BaselineNs: b.wall, TracedNs: t.wall, EventsPerRun: events}
		if clock == "cpu" {
			p.BaselineNs, p.TracedNs = b.cpu, t.cpu
		}
		pairs = append(pairs, p)
	}
	return pairs, fallback
}
