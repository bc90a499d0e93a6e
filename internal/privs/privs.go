package privs

import (
	"fmt"
	"strings"
)

// Capability numbers from include/uapi/linux/capability.h.
const (
	CapSysAdmin = 21
	CapPerfmon  = 38 // Linux 5.8+
	CapBPF      = 39 // Linux 5.8+
)

var capNames = map[int]string{CapSysAdmin: "CAP_SYS_ADMIN", CapPerfmon: "CAP_PERFMON", CapBPF: "CAP_BPF"}

// Missing returns the capabilities a tracer needs that effective lacks.
// Since 5.8 (commit a17b53c4a4b5 "bpf, capability: Introduce CAP_BPF")
// CAP_BPF with CAP_PERFMON suffices; before it only CAP_SYS_ADMIN does, and
// CAP_SYS_ADMIN still implies both.
func Missing(effective uint64, kernelHasCapBPF bool) []string {
	has := func(c int) bool { return effective&(1<<uint(c)) != 0 }
	if has(CapSysAdmin) {
		return nil
	}
	if !kernelHasCapBPF {
		return []string{capNames[CapSysAdmin]}
	}
	var out []string
	for _, c := range []int{CapBPF, CapPerfmon} {
		if !has(c) {
			out = append(out, capNames[c])
		}
	}
	return out
}

// Error formats the missing capabilities as the one-line error users see.
func Error(missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing capabilities %s: run as root (sudo fragscope ...) or grant them (setcap %s+ep, or docker run --cap-add %s)",
		strings.Join(missing, ", "),
		strings.ToLower(strings.Join(missing, ",")),
		strings.Join(trimCap(missing), " --cap-add "))
}

func trimCap(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimPrefix(n, "CAP_")
	}
	return out
}
