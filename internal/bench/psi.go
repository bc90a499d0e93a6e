package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ParsePSITotal returns the "some" line's total from a pressure file
// (/proc/pressure/cpu): the cumulative time at least one runnable task
// waited for a CPU.
//
//	some avg10=85.83 avg60=75.93 avg300=45.69 total=231317991
func ParsePSITotal(data string) (time.Duration, error) {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				us, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("pressure: total: %w", err)
				}
				return time.Duration(us) * time.Microsecond, nil
			}
		}
		return 0, fmt.Errorf("pressure: no total= in %q", line)
	}
	return 0, fmt.Errorf("pressure: no \"some\" line")
}

// CPUPressure reads the cumulative CPU "some" stall time (PSI, 4.20+).
func CPUPressure() (time.Duration, error) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, err
	}
	return ParsePSITotal(string(b))
}
