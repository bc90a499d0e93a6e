package probes

import (
	"fmt"
	"os"
	"testing"
	"time"
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
