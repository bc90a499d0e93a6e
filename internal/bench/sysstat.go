package bench

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// SysCPU is the aggregate "cpu" line of /proc/stat: cumulative clock ticks
// of all CPUs by state (proc(5)). Guest time is already inside user and
// nice, so it is not read.
type SysCPU struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// Total is every tick the line accounts, steal included.
func (c SysCPU) Total() uint64 {
	return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
}

// ParseSysCPU reads the "cpu " line of /proc/stat. Kernels before 2.6.11
// lack steal; it is then 0.
func ParseSysCPU(data string) (SysCPU, error) {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 8 {
			return SysCPU{}, fmt.Errorf("/proc/stat: short cpu line %q", trunc(line))
		}
		var v [8]uint64
		for i := range v {
			if i+1 >= len(f) {
				break
			}
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return SysCPU{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		return SysCPU{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
	}
	return SysCPU{}, fmt.Errorf("/proc/stat: no cpu line")
}

// ReadSysCPU reads /proc/stat.
func ReadSysCPU() (SysCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SysCPU{}, err
	}
	return ParseSysCPU(string(b))
}

// SysCPUShare is how the machine's CPU time between two readings was
// spent, in percent of all CPUs' time: what a reader needs to judge the
// noise around a small measurement (a busy or stolen-from VM).
type SysCPUShare struct {
	Busy, Idle, IOWait, Steal float64 // Busy: user+nice+system+irq+softirq
}

// Share returns the split of the ticks from a to b (NaN if none passed).
func Share(a, b SysCPU) SysCPUShare {
	total := float64(b.Total() - a.Total())
	if total <= 0 {
		nan := math.NaN()
		return SysCPUShare{nan, nan, nan, nan}
	}
	pct := func(x, y uint64) float64 { return float64(y-x) / total * 100 }
	busy := (b.User + b.Nice + b.System + b.IRQ + b.SoftIRQ) - (a.User + a.Nice + a.System + a.IRQ + a.SoftIRQ)
	return SysCPUShare{
		Busy:   float64(busy) / total * 100,
		Idle:   pct(a.Idle, b.Idle),
		IOWait: pct(a.IOWait, b.IOWait),
		Steal:  pct(a.Steal, b.Steal),
	}
}
