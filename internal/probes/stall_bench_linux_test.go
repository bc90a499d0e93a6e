package probes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// BenchmarkStallScan is what one 250 ms stall scan costs in userspace:
// reading both in-flight maps holding n entries (a quiet node holds a
// handful).
func BenchmarkStallScan(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF")
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.oom_control")
	s, err2 := Open(Options{Hooks: []Hook{HookNsSyscall, HookMemcgOOMWait}, CgroupV1Memory: err == nil, StallThreshold: time.Second})
	if err2 != nil {
		b.Fatal(err2)
	}
	defer s.Close()
	if s.nsCalls == nil {
		b.Fatalf("ns_syscall not attached: %+v", s.Status)
	}
	for _, n := range []int{0, 16, 256} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			for tid := uint32(1); tid <= uint32(n); tid++ {
				// Tids far above pid_max: no real task collides.
				if err := s.nsCalls.Put(tid+1<<30, nssyscallNsCall{EnterNs: 1, Pid: tid}); err != nil {
					b.Fatal(err)
				}
			}
			buf := make([]InFlight, 0, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if buf, err = s.InFlight(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if len(buf) < n {
				b.Fatalf("scan saw %d of %d entries", len(buf), n)
			}
			for tid := uint32(1); tid <= uint32(n); tid++ {
				s.nsCalls.Delete(tid + 1<<30)
			}
		})
	}
}

// BenchmarkMemcgWaitHook measures what the memcg_oom_wait program adds to
// each memcg reclaim, by the kernel's BPF run-time stats, beside how long
// the reclaims themselves take: one op is a child writing 32 MiB of page
// cache inside an 8 MiB v1 memory cgroup, which reclaims against the
// limit throughout. wall-ns/op is the whole write, for scale.
func BenchmarkMemcgWaitHook(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF")
	}
	const v1 = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(v1, "memory.oom_control")); err != nil {
		b.Skip("no cgroup v1 memory controller: the hook attaches only there")
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("kernel cannot keep BPF run-time stats (Linux 5.8+): %v", err)
	}
	defer stats.Close()
	cg := filepath.Join(v1, fmt.Sprintf("fragscope-bench-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.Remove(cg)
	if err := os.WriteFile(filepath.Join(cg, "memory.limit_in_bytes"), []byte("8M"), 0); err != nil {
		b.Fatal(err)
	}
	s, err := Open(Options{Hooks: []Hook{HookMemcgOOMWait}, CgroupV1Memory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if !s.Attached(HookMemcgOOMWait) {
		b.Fatalf("memcg_oom_wait not attached: %+v", s.Status)
	}
	file := filepath.Join(b.TempDir(), "fill")
	script := fmt.Sprintf("echo $$ > %s/cgroup.procs && dd if=/dev/zero of=%s bs=1M count=32 2>/dev/null && rm %s",
		cg, file, file)
	before, _ := s.ProgramStats()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			b.Fatalf("workload: %v %s", err, out)
		}
	}
	b.StopTimer()
	after, _ := s.ProgramStats()
	st, prev := after["memcg_reclaim_end"], before["memcg_reclaim_end"]
	runs := st.RunCount - prev.RunCount
	if runs == 0 {
		b.Fatal("no memcg reclaim seen: the workload did not reach the limit")
	}
	b.ReportMetric(float64(st.Runtime-prev.Runtime)/float64(runs), "prog-ns/reclaim")
	b.ReportMetric(float64(runs)/float64(b.N), "reclaims/op")
}
