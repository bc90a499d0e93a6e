package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/bench"
	"github.com/fragscope/fragscope/internal/workload"
)

// cgChildMain is the short-lived process of one cgroup: join it, open and
// close a one-block packet ring (an unmovable allocation of the block's
// order, which the agent attributes to the cgroup), exit.
func cgChildMain(args []string) int {
	fs := flag.NewFlagSet(cgChildCmd, flag.ExitOnError)
	block := fs.Int("block", 64<<10, "ring block bytes")
	fs.Parse(args)
	for _, dir := range fs.Args() {
		// Writing our pid moves every thread of this process.
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fd, err := workload.PacketRing(uint32(*block), 1)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		unix.Close(fd)
	}
	return 0
}

// cgroupResult is the scrape measurement.
type cgroupResult struct {
	Made             int     `json:"made"`
	MkdirS           float64 `json:"mkdir_s"`
	PopulateS        float64 `json:"populate_s"`
	ChildFailures    int     `json:"child_failures"`
	HighOrderDelta   float64 `json:"cgroup_high_order_delta"` // growth of all per-cgroup series over the populate
	MapOverflow      float64 `json:"cgroup_map_overflow"`     // allocations the kernel could not attribute: cgroup map full
	BenchSeries      int     `json:"bench_series"`            // series of the benchmark's cgroups in /metrics (top N of them)
	KnownInRecording int     `json:"known_in_recording"`      // benchmark cgroups with counts in the recording (-1: unread)
	Before           scrapes `json:"scrape_before"`           // with only the host's own cgroups known
	After            scrapes `json:"scrape_after"`            // with the benchmark's cgroups known
	RemoveS          float64 `json:"remove_s"`
	RemoveErr        string  `json:"remove_error,omitempty"`
}

// scrapes is a series of timed scrapes.
type scrapes struct {
	N         int       `json:"n"`
	Ms        []float64 `json:"ms"`
	MedianMs  float64   `json:"median_ms"`
	P90Ms     float64   `json:"p90_ms"`
	MaxMs     float64   `json:"max_ms"`
	BodyBytes int       `json:"body_bytes"`              // decompressed
	CgSeries  int       `json:"cgroup_series"`           // series of one per-cgroup family
	CPUmsPer  float64   `json:"agent_cpu_ms_per_scrape"` // agent CPU over the loop per scrape, its ticks included
}

// timedScrapes runs n scrapes with gap between them, after one untimed
// scrape so that the connection is open and the collector warm, as it is
// for a Prometheus that scrapes every 15 s.
func timedScrapes(ctx context.Context, a *agentProc, n int, gap time.Duration) (scrapes, error) {
	s := scrapes{N: n}
	if _, _, err := a.scrape(); err != nil {
		return s, err
	}
	s0, err := bench.ReadStat(a.pid)
	if err != nil {
		return s, err
	}
	for i := range n {
		if i > 0 && !sleepCtx(ctx, gap) {
			return s, ctx.Err()
		}
		body, took, err := a.scrape()
		if err != nil {
			return s, err
		}
		s.BodyBytes = len(body)
		s.Ms = append(s.Ms, took.Seconds()*1e3)
	}
	s1, err := bench.ReadStat(a.pid)
	if err != nil {
		return s, err
	}
	s.CPUmsPer = float64(s1.CPUTicks()-s0.CPUTicks()) / float64(a.hz) * 1e3 / float64(n)
	s.MedianMs, s.P90Ms = bench.Median(s.Ms), bench.Percentile(s.Ms, 90)
	s.MaxMs = bench.Percentile(s.Ms, 100)
	return s, nil
}

func measureCgroups(ctx context.Context, cfg config, a *agentProc, h hierarchy, rep *report) (err error) {
	res := &rep.Cgroups
	logf("scrapes with the host's cgroups: %d", cfg.scrapes)
	if res.Before, err = timedScrapes(ctx, a, cfg.scrapes, cfg.scrapeGap); err != nil {
		return err
	}
	if c, err := a.counters(""); err == nil {
		res.Before.CgSeries = c.cgSeries
	}

	base := h.benchDir()
	sweepStale(base)
	run := filepath.Join(base, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(run, 0o755); err != nil {
		return fmt.Errorf("make cgroups under %s: %w", h.mount, err)
	}
	var dirs []string
	defer func() {
		// Every cgroup goes, whatever happened: a failed child has exited
		// by now, so none holds a process.
		t0 := time.Now()
		rerr := removeTree(run)
		os.Remove(base) // only if no other run uses it
		res.RemoveS = time.Since(t0).Seconds()
		if rerr != nil {
			res.RemoveErr = rerr.Error()
			logf("removing the cgroups: %v", rerr)
		} else {
			logf("removed %d cgroups in %.1f s", len(dirs), res.RemoveS)
		}
	}()
	t0 := time.Now()
	for i := range cfg.cgroups {
		d := filepath.Join(run, fmt.Sprintf("cg-%05d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("mkdir cgroup %d of %d: %w", i+1, cfg.cgroups, err)
		}
		dirs = append(dirs, d)
	}
	res.Made, res.MkdirS = len(dirs), time.Since(t0).Seconds()
	logf("made %d cgroups under %s in %.1f s; one process each allocates there", len(dirs), run, res.MkdirS)

	c0, err := a.counters(h.prefix())
	if err != nil {
		return err
	}
	t0 = time.Now()
	if res.ChildFailures, err = populate(ctx, cfg, dirs); err != nil {
		return err
	}
	res.PopulateS = time.Since(t0).Seconds()
	// Two intervals: the last allocations are in a tick, and its cgroups
	// resolved (a walk may wait up to a second after the previous one).
	if !sleepCtx(ctx, 2*cfg.interval+time.Second) {
		return ctx.Err()
	}
	c1, err := a.counters(h.prefix())
	if err != nil {
		return err
	}
	res.HighOrderDelta = c1.cgHighOrder - c0.cgHighOrder
	res.MapOverflow = c1.dropped["cgroup_map"] - c0.dropped["cgroup_map"]
	res.BenchSeries = c1.benchSer
	logf("populated in %.1f s (%d failed); per-cgroup high-order count +%.0f, cgroup map overflow +%.0f; scrapes: %d",
		res.PopulateS, res.ChildFailures, res.HighOrderDelta, res.MapOverflow, cfg.scrapes)

	if res.After, err = timedScrapes(ctx, a, cfg.scrapes, cfg.scrapeGap); err != nil {
		return err
	}
	res.After.CgSeries = c1.cgSeries
	if cfg.idleCgroups > 0 {
		logf("idle %v with the cgroups known", cfg.idleCgroups)
		w, err := a.window(ctx, cfg, "idle+cgroups", cfg.idleCgroups, nil)
		if err != nil {
			return err
		}
		rep.IdleCgroups = &w
	}
	return nil
}

// populate runs one short-lived process per cgroup, cfg.cgParallel at once.
func populate(ctx context.Context, cfg config, dirs []string) (failures int, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	var (
		next, failed atomic.Int64
		wg           sync.WaitGroup
		firstErr     atomic.Value
	)
	for range cfg.cgParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(dirs) {
					return
				}
				cmd := exec.Command(self, cgChildCmd, "-block", strconv.Itoa(cfg.cgBlock), dirs[i])
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				if out, err := cmd.CombinedOutput(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v: %s", dirs[i], err, strings.TrimSpace(string(out))))
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		logf("cgroup process failed (%d in all), first: %s", failed.Load(), e)
	}
	if int(failed.Load()) == len(dirs) {
		return len(dirs), errors.New("every cgroup process failed")
	}
	return int(failed.Load()), ctx.Err()
}

// removeTree removes a cgroup and its descendants, deepest first (cgroupfs
// takes rmdir only, of a cgroup without children or processes).
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil && len(errs) < 3 {
				errs = append(errs, err)
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("rmdir %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// sweepStale removes what an earlier run that died left under base: the
// subtrees named by the pid of a process that no longer exists.
func sweepStale(base string) {
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			if err := removeTree(filepath.Join(base, e.Name())); err != nil {
				logf("stale cgroups of run %d: %v", pid, err)
			} else {
				logf("removed the stale cgroups of run %d", pid)
			}
		}
	}
}

// knownInRecording counts the benchmark's cgroups that have counts in the
// agent's recording (`fragscope export` of the data dir): the ones the
// agent's per-cgroup counters knew.
func knownInRecording(bin, dataDir, prefix string) (int, error) {
	cmd := exec.Command(bin, "export", dataDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	paths := map[uint64]string{}
	counted := map[uint64]bool{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var ev struct {
			Type  string `json:"type"`
			Event struct {
				ID      uint64 `json:"id"`
				Path    string `json:"path"`
				Cgroups []struct {
					ID          uint64   `json:"cgroup_id"`
					Unmovable   []uint64 `json:"unmovable"`
					Reclaimable []uint64 `json:"reclaimable"`
					HighOrder   uint64   `json:"high_order"`
					Failures    uint64   `json:"failures"`
				} `json:"cgroups"`
			} `json:"event"`
		}
		line := sc.Bytes()
		// Skip the bulk (snapshots, syscalls) without decoding it.
		if !strings.Contains(string(line[:min(len(line), 40)]), `"tick"`) && !strings.Contains(string(line[:min(len(line), 40)]), `"cgroup_path"`) {
			continue
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, fmt.Errorf("export: %w", err)
		}
		switch ev.Type {
		case "cgroup_path":
			if strings.HasPrefix(ev.Event.Path, prefix) {
				paths[ev.Event.ID] = ev.Event.Path
			}
		case "tick":
			for _, c := range ev.Event.Cgroups {
				if c.HighOrder+c.Failures+sum(c.Unmovable)+sum(c.Reclaimable) > 0 {
					counted[c.ID] = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("fragscope export: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	n := 0
	for id := range paths {
		if counted[id] {
			n++
		}
	}
	return n, nil
}

func sum[T uint64 | float64](xs []T) (n T) {
	for _, x := range xs {
		n += x
	}
	return n
}
