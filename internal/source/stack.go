package source

import "strings"

// tracingPrefixes are frames of the BPF and tracepoint machinery that sit on
// top of every stack a BPF program records (raw_tp: bpf_trace_run4; classic
// tracepoint: perf_trace_* -> trace_call_bpf; kprobe: kprobe_ftrace_handler).
// The kernel's own call traces start below them, and so do ours.
var tracingPrefixes = []string{
	"bpf_prog_", "bpf_trace_run", "__bpf_trace_", "trace_call_bpf", "perf_trace_",
	"kprobe_", "__kprobes", "kretprobe_", "__kretprobe_", "fprobe_", "bpf_trampoline_",
	"arch_rethook_", "rethook_", "ftrace_", "0x",
}

// trimTracing drops the leading tracing frames, and the BPF trampolines
// that other fentry/fexit hooks leave inside a stack (e.g. fragscope's own
// on copy_net_ns). A stack made only of them is returned whole.
func trimTracing(frames []string) []string {
	for i, f := range frames {
		if !isTracingFrame(f) {
			out := frames[i:i]
			for _, g := range frames[i:] {
				if !strings.HasPrefix(g, "bpf_trampoline_") && !strings.HasPrefix(g, "bpf_prog_") {
					out = append(out, g)
				}
			}
			return out
		}
	}
	return frames
}

func isTracingFrame(f string) bool {
	for _, p := range tracingPrefixes {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}
