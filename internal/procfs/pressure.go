package procfs

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Pressure is a PSI file's cumulative stall times (4.20+): /proc/pressure/*
// or a cgroup v2 <resource>.pressure. "some" is time at least one task
// stalled, "full" time all non-idle tasks did (absent for cpu before 5.13).
type Pressure struct {
	SomeUs, FullUs uint64
	HaveFull       bool
}

// ParsePressure reads the "total=" of the some and full lines:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=5899
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=3499
func ParsePressure(r io.Reader) (Pressure, error) {
	var p Pressure
	haveSome := false
	err := lines(r, "pressure", func(_ int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "some" && f[0] != "full") {
			return nil
		}
		for _, kv := range f[1:] {
			v, ok := strings.CutPrefix(kv, "total=")
			if !ok {
				continue
			}
			us, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: total: invalid value %q", f[0], v)
			}
			if f[0] == "some" {
				p.SomeUs, haveSome = us, true
			} else {
				p.FullUs, p.HaveFull = us, true
			}
			return nil
		}
		return fmt.Errorf("no total= in %q", line)
	})
	if err != nil {
		return p, err
	}
	if !haveSome {
		return p, &ParseError{Kind: "pressure", Err: fmt.Errorf("no \"some\" line")}
	}
	return p, nil
}

// CompactionStat is the /proc/vmstat counters that say how direct
// compaction and THP faults fared since boot.
type CompactionStat struct {
	CompactStall           uint64 `json:"compact_stall"`
	CompactFail            uint64 `json:"compact_fail"`
	CompactSuccess         uint64 `json:"compact_success"`
	THPFaultFallback       uint64 `json:"thp_fault_fallback"`
	THPFaultFallbackCharge uint64 `json:"thp_fault_fallback_charge"` // 5.9+: the memcg charge failed, not the allocation
}

// ParseVmstatCompaction reads those counters from /proc/vmstat; the others
// are ignored. Counters the kernel lacks (no CONFIG_COMPACTION or
// CONFIG_TRANSPARENT_HUGEPAGE) stay 0.
func ParseVmstatCompaction(r io.Reader) (CompactionStat, error) {
	var c CompactionStat
	dst := map[string]*uint64{
		"compact_stall": &c.CompactStall, "compact_fail": &c.CompactFail, "compact_success": &c.CompactSuccess,
		"thp_fault_fallback": &c.THPFaultFallback, "thp_fault_fallback_charge": &c.THPFaultFallbackCharge,
	}
	err := lines(r, "vmstat", func(_ int, line string) error {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			return nil
		}
		p := dst[name]
		if p == nil {
			return nil
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: invalid value %q", name, val)
		}
		*p = v
		return nil
	})
	return c, err
}
