package bench

import (
	"os"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/procfs"
)

// ParsePSITotal returns the "some" line's total from a pressure file
// (/proc/pressure/cpu): the cumulative time at least one runnable task
// waited for a CPU.
//
//	some avg10=85.83 avg60=75.93 avg300=45.69 total=231317991
func ParsePSITotal(data string) (time.Duration, error) {
	p, err := procfs.ParsePressure(strings.NewReader(data))
	if err != nil {
		return 0, err
	}
	return time.Duration(p.SomeUs) * time.Microsecond, nil
}

// CPUPressure reads the cumulative CPU "some" stall time (PSI, 4.20+).
func CPUPressure() (time.Duration, error) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, err
	}
	return ParsePSITotal(string(b))
}
