package incident

import (
	"fmt"
	"io"
	"strings"
)

// writeKernelLog writes where in the kernel log the incident was read and,
// per report, what of it could not be read.
func writeKernelLog(w io.Writer, inc *Incident) {
	k := inc.Kernel
	if k == nil {
		return
	}
	head := "kernel log"
	if k.Source != "" {
		head += " " + k.Source
	}
	if k.KernelRelease != "" {
		head += ", kernel " + k.KernelRelease
	}
	wrap(w, head+":", "", "  ")
	for _, r := range k.Reports {
		lines := fmt.Sprintf("line %d", r.FirstLine)
		if r.LastLine > r.FirstLine {
			lines = fmt.Sprintf("lines %d-%d", r.FirstLine, r.LastLine)
		}
		mem := ""
		if r.Kind == "page_alloc_failure" || r.Kind == "oom" || r.Kind == "page_alloc_stall" {
			if !r.HaveMemInfo {
				mem = " (no Mem-Info)"
			}
		}
		wrap(w, fmt.Sprintf("%s: %s%s: %s", lines, r.Kind, mem, r.Header), "  ", "      ")
		if len(r.Unreadable) > 0 {
			wrap(w, "could not read: "+strings.Join(r.Unreadable, "; "), "    ", "      ")
		}
	}
}

// kernelHeadline is the headline of an incident read from a kernel log
// alone: the log names no syscall and no errno, only what failed.
func kernelHeadline(inc *Incident) string {
	k := inc.Kernel
	if k == nil || inc.Syscall.Name != "" {
		return ""
	}
	who := ""
	if inc.Task.Comm != "" || inc.Task.PID != 0 {
		who = fmt.Sprintf(" by %s[%d]", inc.Task.Comm, inc.Task.PID)
	}
	switch k.What {
	case "Mem-Info excerpt", "suppressed reports":
		return fmt.Sprintf("%s in the kernel log: %s", k.What, causeWords[inc.Verdict.Cause])
	}
	return fmt.Sprintf("%s%s failed: %s", k.What, who, causeWords[inc.Verdict.Cause])
}
