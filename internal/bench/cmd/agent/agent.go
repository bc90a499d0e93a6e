package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fragscope/fragscope/internal/bench"
)

// agentProc is the one `fragscope agent` every measurement is taken from.
type agentProc struct {
	cmd        *exec.Cmd
	pid        int
	addr       string
	dataDir    string
	logPath    string
	readyAfter time.Duration
	readyCPU   uint64 // clock ticks used until ready
	hz         uint64
	client     *http.Client
	exited     chan struct{}
	waitErr    error
	stopped    bool
}

// freeAddr asks the kernel for a free loopback port: the default 9436 may
// be taken by an agent someone else is running.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startAgent(ctx context.Context, cfg config, dir, cgroupMode string) (*agentProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	a := &agentProc{addr: addr, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "agent.log"),
		hz: bench.ClockTicks(), exited: make(chan struct{}),
		// Prometheus' own default scrape timeout; keep-alive as it does.
		client: &http.Client{Timeout: 10 * time.Second}}
	logFile, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	ready := filepath.Join(dir, "ready")
	args := []string{"agent", "--data-dir", a.dataDir, "--listen", addr, "--log-format", "json",
		"--interval", cfg.interval.String(), "--cgroup-mode", cgroupMode, "--ready-file", ready}
	a.cmd = exec.Command(cfg.bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C reaches only this program, which
	// then stops the agent in order; Pdeathsig in case this one is killed.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	t0 := time.Now()
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.bin, err)
	}
	a.pid = a.cmd.Process.Pid
	go func() {
		a.waitErr = a.cmd.Wait()
		close(a.exited)
	}()
	deadline := time.After(time.Minute)
	for {
		if _, err := os.Stat(ready); err == nil {
			if a.readyz() {
				break
			}
		}
		select {
		case <-a.exited:
			return nil, fmt.Errorf("fragscope %s exited before it was ready (%v): %s", strings.Join(args, " "), a.waitErr, a.logTail(6))
		case <-deadline:
			a.stop()
			return nil, fmt.Errorf("fragscope agent not ready after a minute: %s", a.logTail(6))
		case <-ctx.Done():
			a.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	a.readyAfter = time.Since(t0)
	if st, err := bench.ReadStat(a.pid); err == nil {
		a.readyCPU = st.CPUTicks()
	}
	return a, nil
}

func (a *agentProc) startupCPU() float64 { return float64(a.readyCPU) / float64(a.hz) * 1e3 }

func (a *agentProc) readyz() bool {
	resp, err := a.client.Get("http://" + a.addr + "/readyz")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGINT, as an operator's systemctl stop would send SIGTERM,
// and waits; SIGKILL after 15 s. Safe to call twice.
func (a *agentProc) stop() error {
	if a.stopped {
		return nil
	}
	a.stopped = true
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
		return fmt.Errorf("fragscope agent did not exit within 15 s of SIGINT; killed")
	}
	if a.waitErr != nil {
		return fmt.Errorf("fragscope agent: %v: %s", a.waitErr, a.logTail(4))
	}
	return nil
}

func (a *agentProc) logTail(n int) string {
	b, _ := os.ReadFile(a.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// logSummary counts the agent's log lines by level and message: incidents
// someone else's workload set off show up here, and they cost the agent.
func (a *agentProc) logSummary() map[string]int {
	out := map[string]int{}
	f, err := os.Open(a.logPath)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var l struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			out["(not json)"]++
			continue
		}
		out[l.Level+" "+l.Msg]++
	}
	return out
}

// scrape is one GET /metrics the way Prometheus does it (keep-alive, gzip
// accepted), timed until the body is read.
func (a *agentProc) scrape() (body []byte, took time.Duration, err error) {
	t0 := time.Now()
	resp, err := a.client.Get("http://" + a.addr + "/metrics")
	if err != nil {
		return nil, 0, err
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	took = time.Since(t0)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("/metrics: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, took, err
}

// counters is what a window reads from /metrics at each end.
type counters struct {
	at                 time.Time
	allocs, order6Unm  float64
	incidents, nsFails float64
	allocFails         float64
	dropped            map[string]float64
	cgHighOrder        float64 // all cgroup series, "other" included
	cgSeries, benchSer int     // cgroup series, and those of the benchmark's cgroups
	bodyBytes          int
}

func (a *agentProc) counters(benchPrefix string) (counters, error) {
	body, _, err := a.scrape()
	if err != nil {
		return counters{}, err
	}
	c := counters{at: time.Now(), dropped: map[string]float64{}, bodyBytes: len(body)}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return c, fmt.Errorf("/metrics: %w", err)
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			label := func(n string) string {
				for _, l := range m.GetLabel() {
					if l.GetName() == n {
						return l.GetValue()
					}
				}
				return ""
			}
			switch name {
			case "fragscope_page_allocations_total":
				c.allocs += v
				if label("order") == "6" && label("migratetype") == "unmovable" {
					c.order6Unm += v
				}
			case "fragscope_page_allocation_failures_total":
				c.allocFails += v
			case "fragscope_incidents_total":
				c.incidents += v
			case "fragscope_namespace_syscall_failures_total":
				c.nsFails += v
			case "fragscope_events_dropped_total":
				c.dropped[label("where")] += v
			case "fragscope_cgroup_unmovable_high_order_allocations_total":
				c.cgHighOrder += v
				c.cgSeries++
				if benchPrefix != "" && strings.HasPrefix(label("cgroup"), benchPrefix) {
					c.benchSer++
				}
			}
		}
	}
	return c, nil
}

// dirGrowth follows the bytes written under a directory: the sum over files
// of how much each grew between two looks (a new file counts whole; files
// pruned or rotated away take nothing back).
type dirGrowth struct {
	dir   string
	sizes map[string]int64
	total int64
}

func newDirGrowth(dir string) *dirGrowth {
	g := &dirGrowth{dir: dir, sizes: map[string]int64{}}
	g.look()
	g.total = 0
	return g
}

func (g *dirGrowth) look() int64 {
	ents, _ := os.ReadDir(g.dir)
	seen := make(map[string]int64, len(ents))
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		n := info.Size()
		seen[e.Name()] = n
		if d := n - g.sizes[e.Name()]; d > 0 {
			g.total += d
		}
	}
	g.sizes = seen
	return g.total
}

type growthSample struct {
	at    time.Time
	bytes int64
}

// stepRate is bytes per minute from samples of a directory that grows in
// steps (the trace writer flushes every second, trace.FlushEvery): between
// the first and the last step seen, so that neither edge of the window
// counts a partial second. With fewer than two steps, growth over the
// whole window.
func stepRate(ss []growthSample, window time.Duration) float64 {
	var first, last *growthSample
	for i := 1; i < len(ss); i++ {
		if ss[i].bytes != ss[i-1].bytes {
			if first == nil {
				first = &ss[i]
			}
			last = &ss[i]
		}
	}
	if first != nil && last != first && last.at.After(first.at) {
		return float64(last.bytes-first.bytes) / last.at.Sub(first.at).Minutes()
	}
	if len(ss) == 0 || window <= 0 {
		return 0
	}
	return float64(ss[len(ss)-1].bytes-ss[0].bytes) / window.Minutes()
}

// window is one measured interval of the agent, idle or under load.
type window struct {
	Kind  string  `json:"kind"`
	Round int     `json:"round"`
	WallS float64 `json:"wall_s"`
	// The agent: CPU in % of one core, memory at the end.
	CPUPct float64 `json:"cpu_pct"`
	RSS    uint64  `json:"rss_bytes"`
	HWM    uint64  `json:"hwm_bytes"`
	// The machine over the same window: % of all CPUs' time, and PSI cpu
	// "some" in % of the window (-1 when unavailable).
	SysBusyPct  float64 `json:"sys_busy_pct"`
	SysIdlePct  float64 `json:"sys_idle_pct"`
	SysStealPct float64 `json:"sys_steal_pct"`
	PSIPct      float64 `json:"psi_cpu_some_pct"`
	// Flight recorder: bytes per minute written to segments/ and incidents/
	// (growth of the files; a file rewritten whole counts its growth only),
	// and everything the agent wrote (/proc/<pid>/io: wchar, any file or
	// socket; write_bytes, what went to the storage layer).
	SegBytesPerMin   float64 `json:"segments_bytes_per_min"`
	IncBytesPerMin   float64 `json:"incidents_bytes_per_min"`
	WCharPerMin      float64 `json:"wchar_bytes_per_min"`
	WriteBytesPerMin float64 `json:"write_bytes_per_min"`
	// What the agent counted, from /metrics at both ends (to within one
	// --interval at each end).
	AllocsPerSec    float64 `json:"page_allocations_per_s"`
	Order6UnmPerSec float64 `json:"order6_unmovable_per_s"`
	Incidents       float64 `json:"incidents"`
	NsFailures      float64 `json:"namespace_syscall_failures"`
	AllocFailures   float64 `json:"page_allocation_failures"`
	Dropped         float64 `json:"events_dropped"`
	// Quiet: nothing on the host set off an incident or a namespace
	// failure in the window, nor did an earlier one's recording land in it.
	Quiet            bool `json:"quiet"`
	Rings, RingFails int  `json:"-"`
}

func (w window) String() string {
	return fmt.Sprintf("%s: cpu %.3f%% rss %.1f MiB; machine busy %.1f%% steal %.1f%% psi %.1f%%; segments %.0f B/min incidents/ %.0f B/min wchar %.0f B/min; %.0f allocs/s (order-6 unmovable %.1f/s), %g incidents, %g ns failures, rings %d (%d failed)",
		w.Kind, w.CPUPct, bench.MiB(w.RSS), w.SysBusyPct, w.SysStealPct, w.PSIPct, w.SegBytesPerMin, w.IncBytesPerMin, w.WCharPerMin,
		w.AllocsPerSec, w.Order6UnmPerSec, w.Incidents, w.NsFailures, w.Rings, w.RingFails)
}

// window measures the agent for d, with the ring load running through it
// when ring is set. /metrics is read just outside the CPU window, so the
// benchmark's own scrapes are not billed to the idle agent.
func (a *agentProc) window(ctx context.Context, cfg config, kind string, d time.Duration, ring *ringLoad) (window, error) {
	w := window{Kind: kind}
	m0, err := a.counters("")
	if err != nil {
		return w, err
	}
	seg := newDirGrowth(filepath.Join(a.dataDir, "segments"))
	inc := newDirGrowth(filepath.Join(a.dataDir, "incidents"))
	if ring != nil {
		ring.start()
	}
	s0, err := bench.ReadStat(a.pid)
	if err != nil {
		return w, fmt.Errorf("agent: %w", err)
	}
	io0, ioErr := bench.ReadIO(a.pid)
	sys0, sysErr := bench.ReadSysCPU()
	psi0, psiErr := bench.CPUPressure()
	t0 := time.Now()
	segS := []growthSample{{t0, 0}}
	incS := []growthSample{{t0, 0}}
	tick := time.NewTicker(100 * time.Millisecond)
	end := time.NewTimer(d)
	cancelled := false
loop:
	for {
		select {
		case now := <-tick.C:
			segS = append(segS, growthSample{now, seg.look()})
			incS = append(incS, growthSample{now, inc.look()})
		case <-end.C:
			break loop
		case <-ctx.Done():
			cancelled = true
			break loop
		}
	}
	tick.Stop()
	s1, err := bench.ReadStat(a.pid)
	wall := time.Since(t0)
	io1, io1Err := bench.ReadIO(a.pid)
	sys1, _ := bench.ReadSysCPU()
	psi1, psi1Err := bench.CPUPressure()
	if ring != nil {
		w.Rings, w.RingFails = ring.stop()
	}
	if err != nil {
		return w, fmt.Errorf("agent exited during the %s window: %v: %s", kind, err, a.logTail(4))
	}
	if cancelled {
		return w, ctx.Err()
	}
	now := time.Now()
	segS = append(segS, growthSample{now, seg.look()})
	incS = append(incS, growthSample{now, inc.look()})
	m1, err := a.counters("")
	if err != nil {
		return w, err
	}

	w.WallS = wall.Seconds()
	w.CPUPct = bench.CPUPercent(s1.CPUTicks()-s0.CPUTicks(), a.hz, wall)
	if st, err := bench.ReadStatus(a.pid); err == nil {
		w.RSS, w.HWM = st.VmRSS, st.VmHWM
	}
	w.SysBusyPct, w.SysIdlePct, w.SysStealPct, w.PSIPct = -1, -1, -1, -1
	if sysErr == nil {
		sh := bench.Share(sys0, sys1)
		w.SysBusyPct, w.SysIdlePct, w.SysStealPct = sh.Busy, sh.Idle, sh.Steal
	}
	if psiErr == nil && psi1Err == nil {
		w.PSIPct = float64(psi1-psi0) / float64(wall) * 100
	}
	w.SegBytesPerMin = stepRate(segS, wall)
	w.IncBytesPerMin = float64(incS[len(incS)-1].bytes) / wall.Minutes()
	w.WCharPerMin, w.WriteBytesPerMin = -1, -1
	if ioErr == nil && io1Err == nil {
		w.WCharPerMin = float64(io1.WChar-io0.WChar) / wall.Minutes()
		w.WriteBytesPerMin = float64(io1.WriteBytes-io0.WriteBytes) / wall.Minutes()
	}
	dt := m1.at.Sub(m0.at).Seconds()
	w.AllocsPerSec = (m1.allocs - m0.allocs) / dt
	w.Order6UnmPerSec = (m1.order6Unm - m0.order6Unm) / dt
	w.Incidents = m1.incidents - m0.incidents
	w.NsFailures = m1.nsFails - m0.nsFails
	w.AllocFailures = m1.allocFails - m0.allocFails
	for k, v := range m1.dropped {
		w.Dropped += v - m0.dropped[k]
	}
	w.Quiet = w.Incidents == 0 && w.NsFailures == 0 && incS[len(incS)-1].bytes == 0
	return w, nil
}

func buildFragscope(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "fragscope")
	// By import path, so any directory inside the module will do.
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/fragscope/fragscope/cmd/fragscope")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fragscope (run from the repository, or pass -bin): %v\n%s", err, out)
	}
	return bin, nil
}
