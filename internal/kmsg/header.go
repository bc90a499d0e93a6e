package kmsg

import (
	"strconv"
	"strings"
)

// header recognises the first line of a report and opens it (or, for a
// one-line report, emits it). It returns false for any other line.
func (m *machine) header(l msgLine, t string) bool {
	switch {
	case strings.Contains(t, "page allocation "):
		return m.pageAlloc(l, t)
	case strings.Contains(t, "invoked oom-killer"):
		i := strings.Index(t, "invoked oom-killer")
		r := &Report{Kind: KindOOM, Header: t, OOM: &OOM{}}
		r.Task.Comm = strings.TrimSpace(t[:i])
		m.start(r, l)
		m.fields(l, t[i:])
		return true
	case strings.Contains(t, "vmalloc: allocation failure") || strings.Contains(t, "vmalloc error: size") || strings.Contains(t, "vmap allocation for size"):
		return m.vmalloc(l, t)
	case strings.Contains(t, "kmem_cache_create") && (strings.Contains(t, " failed with error ") || strings.Contains(t, "Failed to create slab")):
		return m.slabCreate(l, t)
	case strings.Contains(t, "Unable to create nf_conn slab cache"):
		m.minor(Report{Kind: KindConntrackSlab, Header: t}, l)
		return true
	case strings.Contains(t, "Unable to allocate memory on node"):
		return m.slabAlloc(l, t)
	case strings.HasSuffix(t, " callbacks suppressed"):
		s := strings.TrimSuffix(t, " callbacks suppressed")
		i := strings.LastIndex(s, ": ")
		if i < 0 {
			return false
		}
		n, err := strconv.Atoi(s[i+2:])
		if err != nil {
			return false
		}
		m.minor(Report{Kind: KindCallbacksSuppressed, Header: t, Suppressed: n, SuppressedBy: s[:i]}, l)
		return true
	case (m.open == nil || m.open.Kind != KindOOM) && isOOMFragment(t):
		// An excerpt that starts after the "invoked oom-killer" header.
		m.start(&Report{Kind: KindOOM, Header: t, OOM: &OOM{}}, l)
		m.oomLine(l, t)
		return true
	case isMemInfoStart(t):
		if m.open != nil && m.open.MemInfo == nil && memKind(m.open.Kind) {
			return false // the body takes it
		}
		m.start(&Report{Kind: KindMemInfo, Header: t}, l)
		m.memStart(l)
		return true
	}
	return false
}

// memKind reports whether a kind of report is followed by a Mem-Info dump.
func memKind(k Kind) bool {
	switch k {
	case KindPageAllocFailure, KindPageAllocStall, KindOOM, KindVmallocFailure:
		return true
	}
	return false
}

// pageAlloc reads warn_alloc's header: "comm: page allocation failure:
// order:6, mode:0x10c0d0" (2.6: "failure. order:"), 4.9+ with
// "(GFP_KERNEL|__GFP_COMP)", ", nodemask=(null)", ",cpuset=/,mems_allowed=0",
// and 4.9-4.14's "page allocation stalls for 10036ms, order:0, mode:...".
func (m *machine) pageAlloc(l msgLine, t string) bool {
	i := strings.Index(t, "page allocation ")
	rest := t[i+len("page allocation "):]
	kind := KindPageAllocFailure
	switch {
	case strings.HasPrefix(rest, "failure"):
	case strings.HasPrefix(rest, "stalls for"):
		kind = KindPageAllocStall
	default:
		return false
	}
	comm := strings.TrimSuffix(strings.TrimSpace(t[:i]), ":")
	// Before 4.9 a vmalloc failure printed its own line and then this
	// header for the same call (warn_alloc_failed): one report.
	if o := m.open; o != nil && o.Kind == KindVmallocFailure && !o.HaveGFP && l.n-o.Lines.First <= 3 && kind == KindPageAllocFailure {
		o.Task.Comm = comm
		o.Lines.Last = l.n
		m.gap = 0
		m.fields(l, rest)
		return true
	}
	r := &Report{Kind: kind, Header: t}
	r.Task.Comm = comm
	m.start(r, l)
	m.fields(l, rest)
	return true
}

// vmalloc reads "vmalloc: allocation failure, allocated 4096 of 8192
// bytes" (warn_alloc's text from 4.9 prefixed by "comm: " and followed by
// the mode), "vmalloc error: size 8192, vm_struct allocation failed"
// (5.13+), "vmap allocation for size 8192 failed: use vmalloc=<size> to
// increase size".
func (m *machine) vmalloc(l msgLine, t string) bool {
	r := &Report{Kind: KindVmallocFailure, Header: t, Vmalloc: &Vmalloc{}}
	v := r.Vmalloc
	var i int
	switch {
	case strings.Contains(t, "vmalloc: allocation failure"):
		i = strings.Index(t, "vmalloc: allocation failure")
		s := t[i+len("vmalloc: allocation failure"):]
		if a := strings.Index(s, "allocated "); a >= 0 {
			f := strings.Fields(s[a:])
			if len(f) >= 4 && f[2] == "of" {
				v.AllocatedBytes, _ = strconv.ParseUint(f[1], 10, 64)
				v.SizeBytes, _ = strconv.ParseUint(f[3], 10, 64)
			}
		} else if f := strings.Fields(strings.TrimPrefix(s, ":")); len(f) >= 2 && strings.TrimSuffix(f[1], ",") == "bytes" {
			v.SizeBytes, _ = strconv.ParseUint(f[0], 10, 64) // "vmalloc: allocation failure: N bytes"
		}
	case strings.Contains(t, "vmalloc error: size"):
		i = strings.Index(t, "vmalloc error: size")
		s := strings.TrimSpace(t[i+len("vmalloc error: size"):])
		num, why, _ := strings.Cut(s, ",")
		v.SizeBytes, _ = strconv.ParseUint(strings.TrimSpace(num), 10, 64)
		if j := strings.Index(why, ", mode:"); j >= 0 {
			why = why[:j]
		}
		v.Reason = strings.TrimSpace(why)
	default:
		i = strings.Index(t, "vmap allocation for size")
		f := strings.Fields(t[i+len("vmap allocation for size"):])
		if len(f) > 0 {
			v.SizeBytes, _ = strconv.ParseUint(f[0], 10, 64)
		}
		v.Reason = "vmap area allocation failed"
	}
	r.Task.Comm = strings.TrimSuffix(strings.TrimSpace(t[:i]), ":")
	m.start(r, l)
	m.fields(l, t[i:])
	return true
}

// slabCreate reads "kmem_cache_create(NAME) failed with error -12" (and
// kmem_cache_create_usercopy, __kmem_cache_create_args, "kmem_cache_create:
// Failed to create slab 'NAME'. Error -12"). 3.10 follows it with
// dump_stack, whose lines the report then takes; printed without a newline,
// the "CPU:" line can be glued to it.
func (m *machine) slabCreate(l msgLine, t string) bool {
	r := &Report{Kind: KindSlabCreateFailure, Header: t, Slab: &SlabCache{MemcgID: -1}}
	s := r.Slab
	var tail string
	if i := strings.Index(t, "Failed to create slab '"); i >= 0 {
		rest := t[i+len("Failed to create slab '"):]
		j := strings.LastIndex(rest, "'. Error ")
		if j < 0 {
			return false
		}
		s.Name, s.Func = rest[:j], "kmem_cache_create"
		if strings.Contains(s.Name, "%") {
			return false // the format string, quoted in a write-up
		}
		num, more, _ := strings.Cut(rest[j+len("'. Error "):], " ")
		s.Errno, _ = strconv.Atoi(num)
		tail = more
	} else {
		j := strings.LastIndex(t, ") failed with error ")
		k := strings.Index(t, "kmem_cache_create")
		open := k + strings.IndexByte(t[k:], '(')
		if j < 0 || open < k || open > j {
			return false
		}
		b := k
		for b > 0 && isWordByte(t[b-1]) {
			b-- // "__kmem_cache_create_args"
		}
		fn := t[b:open]
		if !validSym(fn) || strings.ContainsAny(t[open+1:j], "%\"") {
			return false // source code quoted in a write-up
		}
		s.Func, s.Name = fn, t[open+1:j]
		num := t[j+len(") failed with error "):]
		e := leadingInt(num)
		s.Errno, _ = strconv.Atoi(e)
		tail = num[len(e):]
	}
	// 3.10 per-memcg cache: "base(ID:cgroup)" (memcg_create_cache_name).
	if strings.HasSuffix(s.Name, ")") {
		if k := strings.LastIndex(s.Name, "("); k > 0 {
			id, cg, ok := strings.Cut(s.Name[k+1:len(s.Name)-1], ":")
			if n, err := strconv.Atoi(id); ok && err == nil {
				s.Base, s.MemcgID, s.Cgroup = s.Name[:k], n, cg
			}
		}
	}
	if tail != "" && !strings.HasPrefix(tail, "CPU: ") {
		tail = ""
	}
	r.Header = strings.TrimSuffix(t, tail)
	m.start(r, l)
	if tail != "" {
		m.taskLine(l, tail)
	}
	return true
}

// slabAlloc reads "SLUB: Unable to allocate memory on node -1, gfp=0x20(GFP_ATOMIC)"
// (3.x: "node -1 (gfp=0x20)") and SLAB's "SLAB: Unable to allocate memory on node 0 (gfp=0xd0)".
func (m *machine) slabAlloc(l msgLine, t string) bool {
	kind := KindSLUBAllocFailure
	if strings.Contains(t, "SLAB:") {
		kind = KindSLABAllocFailure
	}
	r := &Report{Kind: kind, Header: t, SlabAlloc: &SlabAlloc{Node: -1}}
	i := strings.Index(t, "on node")
	f := strings.FieldsFunc(t[i+len("on node"):], func(c rune) bool { return c == ',' || c == ' ' || c == '(' })
	if len(f) > 0 {
		if n, err := strconv.Atoi(f[0]); err == nil {
			r.SlabAlloc.Node = n
		}
	}
	m.start(r, l)
	m.fields(l, t[i:])
	return true
}

// slabAllocLine reads the lines slab_out_of_memory prints after its header.
func (m *machine) slabAllocLine(l msgLine, t string) bool {
	sa := m.open.SlabAlloc
	switch {
	case strings.HasPrefix(t, "cache: "):
		c := SlabCacheStat{}
		for i, part := range strings.Split(t, ", ") {
			k, v, _ := strings.Cut(part, ": ")
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case i == 0:
				c.Name = strings.TrimSpace(v)
			case k == "object size":
				c.ObjectSize = n
			case k == "buffer size":
				c.BufferSize = n
			case k == "default order" || k == "order":
				c.DefaultOrder = n
			case k == "min order":
				c.MinOrder = n
			}
		}
		sa.Caches = append(sa.Caches, c)
		return true
	case strings.HasPrefix(t, "node ") && strings.Contains(t, "slabs:"):
		if len(sa.Caches) == 0 {
			sa.Caches = append(sa.Caches, SlabCacheStat{})
		}
		c := &sa.Caches[len(sa.Caches)-1]
		ns := SlabNodeStat{}
		head, rest, _ := strings.Cut(t, ":")
		ns.Node, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "node ")))
		for _, part := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), ": ")
			// SLAB prints "active/total"; the total is what the cache holds.
			if j := strings.IndexByte(v, '/'); j >= 0 {
				v = v[j+1:]
			}
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch k {
			case "slabs":
				ns.Slabs = n
			case "objs":
				ns.Objs = n
			case "free":
				ns.Free = n
			}
		}
		c.Nodes = append(c.Nodes, ns)
		return true
	case strings.Contains(t, "debugging increased min order"):
		return true
	}
	return false
}

// fields reads the header's "key:value"/"key=value" fields: order, mode or
// gfp_mask/gfp (with the flag names), nodemask, cpuset, mems_allowed,
// oom_score_adj. It arranges for the next lines to be read too when the
// header looks cut (wrapped before the mode or inside the names).
func (m *machine) fields(l msgLine, s string) {
	r := m.open
	if m.names {
		s = m.moreNames(s)
	}
	if v, ok := after(s, "order:", "order="); ok {
		if n, err := strconv.Atoi(leadingInt(v)); err == nil {
			r.Order = n
		} else {
			m.note(l.n, "unreadable order %q", clip(v))
		}
	}
	if v, ok := after(s, "mode:", "gfp_mask=", "gfp="); ok {
		hex := v
		if k := strings.IndexAny(hex, "(, )"); k >= 0 {
			hex = hex[:k]
		}
		if g, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(hex, "0x"), "0X"), 16, 64); err == nil && hex != "" {
			r.GFP, r.HaveGFP = g, true
		} else {
			m.note(l.n, "unreadable gfp %q", clip(v))
		}
		if rest := v[len(hex):]; strings.HasPrefix(rest, "(") {
			m.names = true
			m.moreNames(rest[1:])
		}
	}
	if v, ok := after(s, "nodemask="); ok {
		r.Nodemask = upTo(v, ",")
	}
	if v, ok := after(s, "cpuset="); ok {
		r.Cpuset = upTo(v, ", ")
	}
	if v, ok := after(s, "mems_allowed="); ok {
		r.MemsAllowed = upTo(v, ", ")
	}
	if v, ok := after(s, "oom_score_adj="); ok && r.OOM != nil {
		if n, err := strconv.Atoi(leadingInt(v)); err == nil {
			r.OOM.OOMScoreAdj, r.OOM.HaveOOMScoreAdj = n, true
		}
	}
	// The next line may still be the header's (wrapped before "nodemask="
	// or inside the names); headerMore takes it only if it starts so.
	m.hdr = 1
	switch r.Kind {
	case KindPageAllocFailure, KindPageAllocStall, KindOOM:
		if m.names || r.Order < 0 || !r.HaveGFP {
			m.hdr = 2
		}
	}
}

// headerMore takes a header's wrapped continuation.
func (m *machine) headerMore(l msgLine, t string) bool {
	if !m.names {
		ok := false
		for _, p := range []string{"order:", "order=", "mode:", "gfp_mask=", "nodemask=", "cpuset=", "mems_allowed=", ",", "oom_score_adj="} {
			if strings.HasPrefix(t, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	m.fields(l, t)
	return true
}

// moreNames appends the flag names in s up to ')' and returns what follows.
func (m *machine) moreNames(s string) string {
	r := m.open
	end := strings.IndexByte(s, ')')
	in := s
	if end >= 0 {
		in = s[:end]
		m.names = false
	}
	for _, n := range strings.Split(in, "|") {
		if n = strings.TrimSpace(n); n != "" {
			r.GFPNames = append(r.GFPNames, n)
		}
	}
	if end < 0 {
		return ""
	}
	return s[end+1:]
}

// after returns what follows the first of keys found in s.
func after(s string, keys ...string) (string, bool) {
	for _, k := range keys {
		if i := strings.Index(s, k); i >= 0 && (i == 0 || !isWordByte(s[i-1])) {
			return s[i+len(k):], true
		}
	}
	return "", false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func upTo(s, stops string) string {
	if i := strings.IndexAny(s, stops); i >= 0 {
		return s[:i]
	}
	return strings.TrimSpace(s)
}

func leadingInt(s string) string {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// taskLine reads dump_stack's "CPU: 1 PID: 18377 Comm: exe Not tainted
// 3.10.0-514.el7.x86_64 #1" (6.11+: "CPU: 1 UID: 0 PID: ..."; "Kdump:
// loaded"; "Tainted: G        W  O") and 2.6's "Pid: 18377, comm: exe Not
// tainted 2.6.32-279.el6.x86_64 #1".
func (m *machine) taskLine(l msgLine, t string) {
	r := m.open
	if v, ok := after(t, "CPU: "); ok {
		if n, err := strconv.Atoi(leadingInt(v)); err == nil {
			r.Task.CPU = n
		}
	}
	if v, ok := after(t, "PID: ", "Pid: "); ok {
		if n, err := strconv.Atoi(leadingInt(v)); err == nil {
			r.Task.PID = n
		}
	}
	ci := strings.Index(t, "Comm: ")
	if ci < 0 {
		ci = strings.Index(t, "comm: ")
	}
	if ci < 0 {
		m.note(l.n, "no Comm in %q", clip(t))
		return
	}
	rest := t[ci+len("Comm: "):]
	end := len(rest)
	for _, stop := range []string{" Not tainted", " Tainted: ", " Kdump: "} {
		if k := strings.Index(rest, stop); k >= 0 && k < end {
			end = k
		}
	}
	comm := rest[:end]
	if r.Task.Comm == "" || comm != "" && len(comm) >= len(r.Task.Comm) {
		r.Task.Comm = comm
	}
	if end == len(rest) {
		m.release = true
		return
	}
	rest = rest[end:]
	if k := strings.Index(rest, "Tainted: "); k >= 0 && !strings.Contains(rest[:k], "Not") {
		rest = rest[k+len("Tainted: "):]
		var taint []string
		f := strings.Fields(rest)
		i := 0
		for ; i < len(f) && !startsDigit(f[i]); i++ {
			taint = append(taint, f[i])
		}
		r.Kernel.Tainted = strings.Join(taint, " ")
		m.kernelFrom(f[i:])
		return
	}
	if k := strings.Index(rest, "Not tainted"); k >= 0 {
		m.kernelFrom(strings.Fields(rest[k+len("Not tainted"):]))
		return
	}
	m.release = true
}

func (m *machine) kernelFrom(f []string) {
	if len(f) == 0 {
		m.release = true
		return
	}
	m.open.Kernel.Release = f[0]
	m.open.Kernel.Build = strings.Join(f[1:], " ")
}

// releaseMore takes a "CPU:" line's release wrapped onto the next line.
func (m *machine) releaseMore(t string) bool {
	m.release = false
	f := strings.Fields(t)
	if len(f) == 0 || !startsDigit(f[0]) || !strings.Contains(f[0], ".") {
		return false
	}
	m.kernelFrom(f)
	return true
}

func startsDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }
