package bench

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DisableTHP sets PR_SET_THP_DISABLE for the calling process (inherited by
// its children), so anonymous memory is populated with 4 KiB pages only,
// neither PMD-sized nor multi-size (mTHP) folios: one mm_page_alloc event,
// of order 0, per page.
func DisableTHP() error {
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_THP_DISABLE): %w", err)
	}
	return nil
}

// Sample is one workload run: its wall time and the CPU time (user+system)
// of the thread that ran it. MAP_POPULATE faults every page in that thread,
// in the kernel, so CPU includes the allocator and any BPF program attached
// to it, but not the time spent waiting for a CPU on a busy machine.
type Sample struct {
	Wall time.Duration `json:"wall_ns"`
	CPU  time.Duration `json:"cpu_ns"`
}

func threadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// PopulateOnce maps size bytes of private anonymous memory with
// MAP_POPULATE, so the kernel allocates and zeroes every page before mmap
// returns, then unmaps it, and returns the time of both. The caller must
// hold its OS thread (runtime.LockOSThread) for CPU to mean anything.
func PopulateOnce(size int) (Sample, error) {
	c0, err := threadCPU()
	if err != nil {
		return Sample{}, err
	}
	start := time.Now()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return Sample{}, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	if err := unix.Munmap(b); err != nil {
		return Sample{}, fmt.Errorf("munmap: %w", err)
	}
	wall := time.Since(start)
	c1, err := threadCPU()
	if err != nil {
		return Sample{}, err
	}
	return Sample{Wall: wall, CPU: c1 - c0}, nil
}

// Populate runs PopulateOnce runs times on one locked OS thread.
func Populate(size, runs int) ([]Sample, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]Sample, 0, runs)
	for range runs {
		s, err := PopulateOnce(size)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}
