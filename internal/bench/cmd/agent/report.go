package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/bench"
)

type configSummary struct {
	Rounds      int     `json:"rounds"`
	IdleS       float64 `json:"idle_s"`
	LoadS       float64 `json:"load_s"`
	IntervalS   float64 `json:"interval_s"`
	RingRate    float64 `json:"ring_rate_per_s"`
	RingBlocks  int     `json:"ring_blocks"`
	Cgroups     int     `json:"cgroups"`
	Scrapes     int     `json:"scrapes"`
	IdleCgroupS float64 `json:"idle_cgroups_s"`
}

func (c config) summary() configSummary {
	return configSummary{c.rounds, c.idle.Seconds(), c.load.Seconds(), c.interval.Seconds(), c.ringRate, c.ringBlocks,
		c.cgroups, c.scrapes, c.idleCgroups.Seconds()}
}

// summary is the medians over rounds, against the targets.
type summary struct {
	IdleCPUPct      float64           `json:"idle_cpu_pct"`
	IdleCPURounds   []float64         `json:"idle_cpu_pct_rounds"`
	QuietIdleRounds int               `json:"quiet_idle_rounds"`
	QuietIdleCPUPct float64           `json:"quiet_idle_cpu_pct"`
	QuietIdleSeg    float64           `json:"quiet_idle_segments_bytes_per_min"`
	IdleWCharPerMin float64           `json:"idle_wchar_bytes_per_min"`
	LoadCPUPct      float64           `json:"load_cpu_pct"`
	IdleSegPerMin   float64           `json:"idle_segments_bytes_per_min"`
	LoadSegPerMin   float64           `json:"load_segments_bytes_per_min"`
	IdleIncPerMin   float64           `json:"idle_incidents_bytes_per_min"`
	LoadIncPerMin   float64           `json:"load_incidents_bytes_per_min"`
	IdleAllocsPerS  float64           `json:"idle_page_allocations_per_s"`
	LoadAllocsPerS  float64           `json:"load_page_allocations_per_s"`
	LoadOrder6PerS  float64           `json:"load_order6_unmovable_per_s"`
	IdleStealPct    float64           `json:"idle_steal_pct"`
	IdleMachineBusy float64           `json:"idle_machine_busy_pct"`
	RSSMiB          float64           `json:"rss_mib"`
	HWMMiB          float64           `json:"hwm_mib"`
	HWMEndMiB       float64           `json:"hwm_end_mib"`
	ScrapeMedianMs  float64           `json:"scrape_median_ms"`
	ScrapeP90Ms     float64           `json:"scrape_p90_ms"`
	Verdicts        map[string]string `json:"verdicts"`
}

type report struct {
	Config          configSummary  `json:"config"`
	Kernel          string         `json:"kernel"`
	CPUs            int            `json:"cpus"`
	Bin             string         `json:"bin"`
	CgroupMode      string         `json:"cgroup_mode"`
	CgroupMount     string         `json:"cgroup_mount"`
	AgentCgroupMode string         `json:"agent_cgroup_mode"`
	HZ              uint64         `json:"-"`
	ReadyAfterMs    float64        `json:"ready_after_ms"`
	StartupCPUms    float64        `json:"startup_cpu_ms"`
	Summary         summary        `json:"summary"`
	Idle            []window       `json:"idle"`
	Load            []window       `json:"load"`
	IdleCgroups     *window        `json:"idle_cgroups,omitempty"`
	RSSRounds       uint64         `json:"rss_after_rounds_bytes"`
	HWMRounds       uint64         `json:"hwm_after_rounds_bytes"`
	RSSEnd          uint64         `json:"rss_end_bytes"`
	HWMEnd          uint64         `json:"hwm_end_bytes"`
	Cgroups         cgroupResult   `json:"cgroups"`
	CgroupErr       string         `json:"cgroup_error,omitempty"`
	AgentLog        map[string]int `json:"agent_log"`
}

func med(ws []window, f func(window) float64) float64 { return bench.Median(pick(ws, f)) }

func (r *report) finish() {
	s := &r.Summary
	s.IdleCPURounds = pick(r.Idle, func(w window) float64 { return w.CPUPct })
	s.IdleCPUPct = bench.Median(s.IdleCPURounds)
	var quiet []window
	for _, w := range r.Idle {
		if w.Quiet {
			quiet = append(quiet, w)
		}
	}
	s.QuietIdleRounds = len(quiet)
	s.QuietIdleCPUPct = med(quiet, func(w window) float64 { return w.CPUPct })
	s.QuietIdleSeg = med(quiet, func(w window) float64 { return w.SegBytesPerMin })
	s.IdleWCharPerMin = med(r.Idle, func(w window) float64 { return w.WCharPerMin })
	s.LoadCPUPct = med(r.Load, func(w window) float64 { return w.CPUPct })
	s.IdleSegPerMin = med(r.Idle, func(w window) float64 { return w.SegBytesPerMin })
	s.LoadSegPerMin = med(r.Load, func(w window) float64 { return w.SegBytesPerMin })
	s.IdleIncPerMin = med(r.Idle, func(w window) float64 { return w.IncBytesPerMin })
	s.LoadIncPerMin = med(r.Load, func(w window) float64 { return w.IncBytesPerMin })
	s.IdleAllocsPerS = med(r.Idle, func(w window) float64 { return w.AllocsPerSec })
	s.LoadAllocsPerS = med(r.Load, func(w window) float64 { return w.AllocsPerSec })
	s.LoadOrder6PerS = med(r.Load, func(w window) float64 { return w.Order6UnmPerSec })
	s.IdleStealPct = med(r.Idle, func(w window) float64 { return w.SysStealPct })
	s.IdleMachineBusy = med(r.Idle, func(w window) float64 { return w.SysBusyPct })
	s.RSSMiB, s.HWMMiB, s.HWMEndMiB = bench.MiB(r.RSSRounds), bench.MiB(r.HWMRounds), bench.MiB(r.HWMEnd)
	s.ScrapeMedianMs, s.ScrapeP90Ms = math.NaN(), math.NaN()
	if r.Cgroups.After.N > 0 {
		s.ScrapeMedianMs, s.ScrapeP90Ms = r.Cgroups.After.MedianMs, r.Cgroups.After.P90Ms
	}
	s.Verdicts = map[string]string{
		"idle_cpu":       bench.TargetAgentIdleCPU.Verdict(s.IdleCPUPct),
		"quiet_idle_cpu": bench.TargetAgentIdleCPU.Verdict(s.QuietIdleCPUPct),
		"rss":            bench.TargetAgentRSS.Verdict(s.HWMMiB),
		"rss_end":        bench.TargetAgentRSS.Verdict(s.HWMEndMiB),
		"scrape_p90":     bench.TargetAgentScrape.Verdict(s.ScrapeP90Ms),
	}
	if r.IdleCgroups != nil {
		s.Verdicts["idle_cgroups_cpu"] = bench.TargetAgentIdleCPU.Verdict(r.IdleCgroups.CPUPct)
	}
}

func (r *report) print(cfg config) error {
	out := io.Writer(os.Stdout)
	if cfg.json {
		out = os.Stderr
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	r.printTable(out, cfg)
	return nil
}

// MarshalJSON writes the figures not measured (NaN: no load windows, no
// scrapes) as null, which encoding/json cannot do for a float64.
func (s summary) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		x := v.Field(i).Interface()
		if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			x = nil
		}
		m[v.Type().Field(i).Tag.Get("json")] = x
	}
	return json.Marshal(m)
}

func kernelRelease() string {
	var uts unix.Utsname
	unix.Uname(&uts)
	return unix.ByteSliceToString(uts.Release[:])
}

func (r *report) printTable(out io.Writer, cfg config) {
	fmt.Fprintf(out, "\nfragscope agent  kernel %s, %d CPUs, %s\n", r.Kernel, r.CPUs, r.Bin)
	fmt.Fprintf(out, "agent:    fragscope agent --interval %v --cgroup-mode %s (host: %s; cgroups made in %s); default hooks, recorder and retention\n",
		cfg.interval, r.AgentCgroupMode, r.CgroupMode, r.CgroupMount)
	fmt.Fprintf(out, "          ready %.0f ms after exec, %.0f ms of CPU until then\n", r.ReadyAfterMs, r.StartupCPUms)
	fmt.Fprintf(out, "rounds:   %d x (idle %v, then %v of %g packet rings/s of %d x 256 KiB blocks, opened and closed)\n",
		cfg.rounds, cfg.idle, cfg.load, cfg.ringRate, cfg.ringBlocks)
	fmt.Fprintf(out, "          CPU from /proc/<pid>/stat utime+stime (in 1/%d s: +-%.3f%% over %v); machine from /proc/stat (all CPUs) and PSI cpu some;\n",
		r.HZ, 100/float64(r.HZ)/cfg.idle.Seconds(), cfg.idle)
	fmt.Fprintf(out, "          /metrics read just outside each CPU window; quiet: no incident or namespace failure on the host in the window\n\n")

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\twindow\tagent CPU %\tVmRSS MiB\tmachine busy %\tsteal %\tPSI %\tsegments B/min\tincidents/ B/min\twchar KiB/min\tallocs/s\torder-6 unm/s\tincidents\tns failures\tquiet\t")
	rows := append(append([]window(nil), r.Idle...), r.Load...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Round < rows[j].Round })
	if r.IdleCgroups != nil {
		rows = append(rows, *r.IdleCgroups)
	}
	for _, x := range rows {
		round := fmt.Sprint(x.Round)
		if x.Round == 0 {
			round = "-"
		}
		quiet := "no"
		if x.Quiet {
			quiet = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%g\t%g\t%s\t\n", round, x.Kind,
			bench.Num(x.CPUPct, 3), bench.Num(bench.MiB(x.RSS), 1), bench.Num(x.SysBusyPct, 1), bench.Num(x.SysStealPct, 1),
			bench.Num(x.PSIPct, 1), bench.Num(x.SegBytesPerMin, 0), bench.Num(x.IncBytesPerMin, 0), bench.Num(x.WCharPerMin/1024, 0),
			bench.Num(x.AllocsPerSec, 0), bench.Num(x.Order6UnmPerSec, 1), x.Incidents, x.NsFailures, quiet)
	}
	w.Flush()
	for _, x := range r.Load {
		if x.RingFails > 0 {
			fmt.Fprintf(out, "  round %d: %d of %d rings failed to open\n", x.Round, x.RingFails, x.Rings+x.RingFails)
		}
	}

	s := r.Summary
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "measure\tmedian\ttarget\t\tper round / detail")
	fmt.Fprintf(w, "idle CPU, %% of one core\t%s\t%s\t%s\t%s\n", bench.Num(s.IdleCPUPct, 3), bench.TargetAgentIdleCPU,
		bench.TargetAgentIdleCPU.Verdict(s.IdleCPUPct), joinNums(s.IdleCPURounds, 3))
	fmt.Fprintf(w, "idle CPU, quiet rounds only\t%s\t%s\t%s\t%d of %d rounds quiet (no incident or namespace failure on the host)\n",
		bench.Num(s.QuietIdleCPUPct, 3), bench.TargetAgentIdleCPU, bench.TargetAgentIdleCPU.Verdict(s.QuietIdleCPUPct), s.QuietIdleRounds, len(r.Idle))
	if len(r.Load) > 0 {
		fmt.Fprintf(w, "CPU under ring load, %% of one core\t%s\t\t\t%s\n", bench.Num(s.LoadCPUPct, 3),
			joinNums(pick(r.Load, func(w window) float64 { return w.CPUPct }), 3))
	}
	if r.IdleCgroups != nil {
		fmt.Fprintf(w, "idle CPU with the %d cgroups known\t%s\t%s\t%s\t%v window\n", r.Cgroups.Made, bench.Num(r.IdleCgroups.CPUPct, 3),
			bench.TargetAgentIdleCPU, bench.TargetAgentIdleCPU.Verdict(r.IdleCgroups.CPUPct), cfg.idleCgroups)
	}
	fmt.Fprintf(w, "peak RSS MiB (VmHWM) after the rounds\t%s\t%s\t%s\tVmRSS %s\n", bench.Num(s.HWMMiB, 1), bench.TargetAgentRSS,
		bench.TargetAgentRSS.Verdict(s.HWMMiB), bench.Num(bench.MiB(r.RSSRounds), 1))
	if cfg.cgroups > 0 {
		fmt.Fprintf(w, "peak RSS MiB (VmHWM) at the end\t%s\t%s\t%s\tVmRSS %s, after %d cgroups\n", bench.Num(s.HWMEndMiB, 1), bench.TargetAgentRSS,
			bench.TargetAgentRSS.Verdict(s.HWMEndMiB), bench.Num(bench.MiB(r.RSSEnd), 1), r.Cgroups.Made)
	}
	c := r.Cgroups
	if c.Before.N > 0 {
		fmt.Fprintf(w, "scrape ms, host cgroups only\t%s\t\t\tp90 %s, max %s; %d B, %d cgroup series; agent %.1f ms CPU/scrape\n", bench.Num(c.Before.MedianMs, 1),
			bench.Num(c.Before.P90Ms, 1), bench.Num(c.Before.MaxMs, 1), c.Before.BodyBytes, c.Before.CgSeries, c.Before.CPUmsPer)
	}
	if c.After.N > 0 {
		fmt.Fprintf(w, "scrape ms, p90, %d cgroups made\t%s\t%s\t%s\tmedian %s, max %s; %d B, %d cgroup series; agent %.1f ms CPU/scrape\n", c.Made,
			bench.Num(c.After.P90Ms, 1), bench.TargetAgentScrape, bench.TargetAgentScrape.Verdict(c.After.P90Ms),
			bench.Num(c.After.MedianMs, 1), bench.Num(c.After.MaxMs, 1), c.After.BodyBytes, c.After.CgSeries, c.After.CPUmsPer)
	}
	fmt.Fprintf(w, "flight recorder idle, segments B/min\t%s\t\t\t%s (%s MiB/day)\n", bench.Num(s.IdleSegPerMin, 0),
		joinNums(pick(r.Idle, func(w window) float64 { return w.SegBytesPerMin }), 0), bench.Num(s.IdleSegPerMin*60*24/(1<<20), 1))
	fmt.Fprintf(w, "flight recorder idle, quiet rounds only\t%s\t\t\t%s MiB/day\n", bench.Num(s.QuietIdleSeg, 0),
		bench.Num(s.QuietIdleSeg*60*24/(1<<20), 1))
	if len(r.Load) > 0 {
		fmt.Fprintf(w, "flight recorder under load, segments B/min\t%s\t\t\t%s\n", bench.Num(s.LoadSegPerMin, 0),
			joinNums(pick(r.Load, func(w window) float64 { return w.SegBytesPerMin }), 0))
		fmt.Fprintf(w, "page allocations/s counted, idle / load\t%s / %s\t\t\torder-6 unmovable under load %s/s (rings: %g/s x %d)\n",
			bench.Num(s.IdleAllocsPerS, 0), bench.Num(s.LoadAllocsPerS, 0), bench.Num(s.LoadOrder6PerS, 1), cfg.ringRate, cfg.ringBlocks)
	}
	fmt.Fprintf(w, "incidents/ B/min, idle / load\t%s / %s\t\t\tkept incidents; set off by whatever fails on the host\n",
		bench.Num(s.IdleIncPerMin, 0), bench.Num(s.LoadIncPerMin, 0))
	fmt.Fprintf(w, "all the agent wrote (wchar), idle, B/min\t%s\t\t\t%s\n", bench.Num(s.IdleWCharPerMin, 0),
		joinNums(pick(r.Idle, func(w window) float64 { return w.WCharPerMin }), 0))
	w.Flush()

	if cfg.cgroups > 0 {
		fmt.Fprintln(out)
		if r.CgroupErr != "" {
			fmt.Fprintf(out, "cgroups: FAILED: %s\n", r.CgroupErr)
		}
		known := "unread"
		if c.KnownInRecording >= 0 {
			known = fmt.Sprint(c.KnownInRecording)
		}
		fmt.Fprintf(out, "cgroups: %d made in %.1f s, each joined by one process opening a %d KiB ring (%.1f s, %d failed);\n",
			c.Made, c.MkdirS, cfg.cgBlock>>10, c.PopulateS, c.ChildFailures)
		fmt.Fprintf(out, "         known to the agent (with counts in its recording): %s of %d; per-cgroup unmovable high-order count +%.0f;\n", known, c.Made, c.HighOrderDelta)
		fmt.Fprintf(out, "         allocations not attributed because the kernel's cgroup map was full: %.0f; removed in %.1f s", c.MapOverflow, c.RemoveS)
		if c.RemoveErr != "" {
			fmt.Fprintf(out, " (NOT all: %s)", c.RemoveErr)
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "         the collector alone (no kernel, no HTTP): go test -run '^$' -bench Scrape4096Cgroups ./internal/metrics\n")
	}
	if len(r.AgentLog) > 0 {
		var keys []string
		for k := range r.AgentLog {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%q x%d", k, r.AgentLog[k]))
		}
		fmt.Fprintf(out, "agent log: %s\n", strings.Join(parts, ", "))
	}
	all := append(append([]window(nil), r.Idle...), r.Load...)
	if n := sum(pick(all, func(w window) float64 { return w.Incidents })); n > 0 {
		fmt.Fprintf(out, "  %g incidents on the host during the rounds (not this benchmark's doing): the agent's work on them (a free-memory\n", n)
		fmt.Fprintf(out, "  snapshot per failure, the incident JSON, the pinned recording a minute later) is in the rows not marked quiet\n")
	}
	if steal := pick(all, func(w window) float64 { return w.SysStealPct }); len(steal) > 0 && slices.Max(steal) > 5 {
		fmt.Fprintf(out, "  steal reached %.0f%%: the hypervisor took CPU from this VM; small CPU figures are noisy\n", slices.Max(steal))
	}
}

func pick(ws []window, f func(window) float64) []float64 {
	var xs []float64
	for _, w := range ws {
		xs = append(xs, f(w))
	}
	return xs
}

func joinNums(xs []float64, dec int) string {
	var s []string
	for _, x := range xs {
		s = append(s, bench.Num(x, dec))
	}
	return strings.Join(s, " ")
}
