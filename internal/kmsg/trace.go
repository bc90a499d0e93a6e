package kmsg

import (
	"strconv"
	"strings"
)

// parseFrame reads one call-trace line:
//
//	[<ffffffff811869a0>] warn_alloc_failed+0x110/0x180            x86 before 4.x, arm64 before 4.x
//	[<ffffffff81691e76>] ? trace_do_page_fault+0x56/0x150         unreliable
//	 ? __alloc_pages_slowpath+0x6b7/0x725                          x86 4.x+
//	 nf_conntrack_init_net+0x101/0x250 [nf_conntrack]             module
//	[<c0014e6c>] (unwind_backtrace+0x0/0xf8) from [<c00119a8>] (show_stack+0x10/0x14)   arm32
//	[c0000000fe2f3a40] [c000000000e7d88c] dump_stack+0xb0/0xf0 (unreliable)             powerpc
func parseFrame(t string) (Frame, bool) {
	var f Frame
	// A frame wrapped after "[<": the address ends this line's head.
	if i := strings.Index(t, ">] "); i > 0 && allHex(t[:i]) {
		t = "[<" + t
	}
	// Leading "[<addr>]" / "[addr]" words: the last is the frame's PC.
	for strings.HasPrefix(t, "[") {
		end := strings.IndexByte(t, ']')
		if end < 0 {
			return f, false
		}
		a := strings.Trim(t[1:end], "<>")
		if a == "" || !allHex(a) {
			return f, false
		}
		f.Addr, _ = strconv.ParseUint(a, 16, 64)
		t = strings.TrimLeft(t[end+1:], " ")
	}
	if strings.HasPrefix(t, "? ") {
		f.Unreliable = true
		t = t[2:]
	}
	// arm32: "(sym+off/size) from [<...>] (caller+off/size)": the first is the frame.
	if strings.HasPrefix(t, "(") {
		end := strings.IndexByte(t, ')')
		if end < 0 {
			return f, false
		}
		t = t[1:end] + t[end+1:]
	}
	sym, rest, _ := strings.Cut(t, " ")
	plus := strings.LastIndex(sym, "+0x")
	if plus <= 0 {
		// arm 5.x+: "warn_alloc from __alloc_pages+0xef8/0x1044", and the
		// bracketed "(warn_alloc_failed) from": the callee has no offset.
		if strings.HasPrefix(rest, "from ") || strings.HasPrefix(rest, "[") && strings.Contains(rest, " from ") {
			f.Func = sym
			if strings.HasPrefix(rest, "[") {
				f.Module = strings.Trim(strings.Fields(rest)[0], "[]")
			}
			return f, validSym(sym) && sym != ""
		}
		return f, false
	}
	if i := strings.Index(rest, "from "); i >= 0 {
		rest = rest[:i] // arm32: what follows is the caller's frame
	}
	off, size, _ := strings.Cut(sym[plus+1:], "/")
	o, err := strconv.ParseUint(strings.TrimPrefix(off, "0x"), 16, 64)
	if err != nil {
		return f, false
	}
	f.Func, f.Offset = sym[:plus], o
	if size != "" {
		f.Size, _ = strconv.ParseUint(strings.TrimPrefix(size, "0x"), 16, 64)
	}
	for _, w := range strings.Fields(rest) {
		switch {
		case w == "(unreliable)":
			f.Unreliable = true
		case len(w) > 2 && w[0] == '[' && w[len(w)-1] == ']' && f.Module == "":
			f.Module = w[1 : len(w)-1]
		}
	}
	return f, validSym(f.Func)
}

// validSym rejects words that only look like "x+0x1/0x2" (a register dump).
func validSym(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isWordByte(c) || c == '.' || c == '$') {
			return false
		}
	}
	return true
}
