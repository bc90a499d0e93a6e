package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStat holds the fields of /proc/<pid>/stat the benchmark uses. Times
// are in clock ticks (USER_HZ) and cover every thread of the process.
type ProcStat struct {
	Comm      string
	State     byte
	Utime     uint64 // field 14
	Stime     uint64 // field 15
	StartTime uint64 // field 22, ticks after boot
}

// CPUTicks is user plus system time.
func (s ProcStat) CPUTicks() uint64 { return s.Utime + s.Stime }

// ParseStat parses the single line of /proc/<pid>/stat. The command name is
// in parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')' (as procps does).
func ParseStat(data string) (ProcStat, error) {
	var st ProcStat
	open := strings.IndexByte(data, '(')
	end := strings.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return st, fmt.Errorf("stat: no (comm) in %q", trunc(data))
	}
	st.Comm = data[open+1 : end]
	// rest[0] is field 3 (state), so field n is rest[n-3].
	rest := strings.Fields(data[end+1:])
	if len(rest) < 22-3+1 {
		return st, fmt.Errorf("stat: %d fields after comm, want at least %d", len(rest), 22-3+1)
	}
	st.State = rest[0][0]
	var err error
	field := func(n int) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = strconv.ParseUint(rest[n-3], 10, 64)
		if err != nil {
			err = fmt.Errorf("stat: field %d: %w", n, err)
		}
		return v
	}
	st.Utime, st.Stime, st.StartTime = field(14), field(15), field(22)
	return st, err
}

// ProcStatus holds the memory lines of /proc/<pid>/status, in bytes.
type ProcStatus struct {
	VmHWM uint64 // peak resident set size
	VmRSS uint64
}

// ParseStatus reads VmHWM and VmRSS from /proc/<pid>/status. Both are
// required: a kernel thread or a zombie has neither, and that is an error.
func ParseStatus(data string) (ProcStatus, error) {
	var st ProcStatus
	var haveHWM, haveRSS bool
	for _, line := range strings.Split(data, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return st, fmt.Errorf("status: %s: unexpected value %q", key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return st, fmt.Errorf("status: %s: %w", key, err)
		}
		if key == "VmHWM" {
			st.VmHWM, haveHWM = kb*1024, true
		} else {
			st.VmRSS, haveRSS = kb*1024, true
		}
	}
	if !haveHWM || !haveRSS {
		return st, fmt.Errorf("status: no VmHWM/VmRSS lines (kernel thread or exited process?)")
	}
	return st, nil
}

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseStat(string(b))
}

// ReadStatus reads and parses /proc/<pid>/status.
func ReadStatus(pid int) (ProcStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStatus{}, err
	}
	return ParseStatus(string(b))
}

// atClkTck is the auxiliary vector entry holding USER_HZ (include/uapi/linux/auxvec.h).
const atClkTck = 17

// DefaultClockTicks is USER_HZ on every Linux architecture Go supports.
const DefaultClockTicks = 100

// ClockTicksFromAuxv finds AT_CLKTCK in a native-endian 64-bit auxiliary
// vector (the contents of /proc/self/auxv); 0 if it is not there.
func ClockTicksFromAuxv(auxv []byte) uint64 {
	for i := 0; i+16 <= len(auxv); i += 16 {
		typ := binary.NativeEndian.Uint64(auxv[i:])
		val := binary.NativeEndian.Uint64(auxv[i+8:])
		switch typ {
		case 0: // AT_NULL
			return 0
		case atClkTck:
			return val
		}
	}
	return 0
}

// ClockTicks is the unit of the times in /proc/<pid>/stat: AT_CLKTCK from
// /proc/self/auxv (what sysconf(_SC_CLK_TCK) returns), else 100.
func ClockTicks() uint64 {
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if hz := ClockTicksFromAuxv(b); hz > 0 {
			return hz
		}
	}
	return DefaultClockTicks
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ProcIO holds the write counters of /proc/<pid>/io, in bytes, summed over
// the process's threads, exited ones included.
type ProcIO struct {
	WChar      uint64 // passed to write(2) and friends, page cache or not
	WriteBytes uint64 // sent, or to be sent, to the storage layer
}

// ParseIO reads wchar and write_bytes from /proc/<pid>/io.
func ParseIO(data string) (ProcIO, error) {
	var io ProcIO
	var have int
	for _, line := range strings.Split(data, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "wchar" && key != "write_bytes") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return io, fmt.Errorf("io: %s: %w", key, err)
		}
		if key == "wchar" {
			io.WChar = n
		} else {
			io.WriteBytes = n
		}
		have++
	}
	if have != 2 {
		return io, fmt.Errorf("io: no wchar/write_bytes lines")
	}
	return io, nil
}

// ReadIO reads and parses /proc/<pid>/io (root, or the process's owner).
func ReadIO(pid int) (ProcIO, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ProcIO{}, err
	}
	return ParseIO(string(b))
}
