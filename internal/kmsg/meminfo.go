package kmsg

import (
	"math/bits"
	"strconv"
	"strings"
)

// memPart is which part of a Mem-Info dump the last line read was: a
// line of bare "key:value" counters continues it (3.x prints the global
// block over several lines, and wrapping splits the long zone lines).
type memPart uint8

const (
	partNone memPart = iota
	partGlobal
	partNode
	partZone
	partOther
)

type memState struct {
	last memPart
	zone int // index in MemInfo.Zones of the last zone line read
	node int // index in MemInfo.Nodes of the last node line read
	// A free-list line not yet ended by its "= NkB" total: wrapped, or
	// split by another CPU's output. Lines that go on with blocks extend it.
	flOpen    bool
	flZone    int
	flLine    int
	flLast    int // order of the last column read, for its "(UEM)" letters
	wantTotal bool
	carry     string // the line's last word, perhaps cut in two by a wrap
}

// zoneNames are the zone names the kernel prints (include/linux/mmzone.h).
var zoneNames = map[string]bool{"DMA": true, "DMA32": true, "Normal": true, "HighMem": true, "Movable": true, "Device": true}

// memStart opens the Mem-Info dump of the open report.
func (m *machine) memStart(l msgLine) *MemInfo {
	mi := &MemInfo{Lines: LineRange{First: l.n, Last: l.n}}
	m.open.MemInfo = mi
	m.phase = phaseMemInfo
	m.mem = memState{}
	return mi
}

// mi returns the open report's Mem-Info, opening one at l when a dump
// shows up without its "Mem-Info:" line (an excerpt).
func (m *machine) mi(l msgLine) *MemInfo {
	mi := m.open.MemInfo
	if mi == nil {
		mi = m.memStart(l)
	}
	mi.Lines.Last = l.n
	return mi
}

// looksZoneStats matches "[Node N ]ZONE free:NkB ...".
func looksZoneStats(t string) bool {
	if !strings.Contains(t, " free:") {
		return false
	}
	_, rest := splitNode(strings.Fields(t))
	return len(rest) >= 2 && zoneNames[rest[0]] && strings.HasPrefix(rest[1], "free:")
}

// looksFreeList matches "[Node N ]ZONE: c*SkB ..." with at least a column.
func looksFreeList(t string) bool {
	if !strings.Contains(t, "kB") || !strings.Contains(t, ": ") {
		return false
	}
	_, rest := splitNode(strings.Fields(t))
	return len(rest) >= 2 && strings.HasSuffix(rest[0], ":") && zoneNames[rest[0][:len(rest[0])-1]] && strings.Contains(rest[1], "kB")
}

// splitNode takes a leading "Node N" off f; node is -1 when there is none.
func splitNode(f []string) (node int, rest []string) {
	if len(f) >= 3 && f[0] == "Node" {
		if n, err := strconv.ParseUint(strings.TrimSuffix(f[1], ","), 10, 16); err == nil {
			return int(n), f[2:]
		}
	}
	return -1, f
}

// memLine reads one Mem-Info line into the open report.
func (m *machine) memLine(l msgLine, t string) bool {
	if isMemInfoStart(t) {
		if m.open.MemInfo != nil {
			m.start(&Report{Kind: KindMemInfo, Header: t}, l)
		}
		m.memStart(l)
		return true
	}
	f := strings.Fields(t)
	if m.mem.flOpen {
		if m.freeCont(l, f) {
			return true
		}
	}
	node, rest := splitNode(f)
	if len(rest) == 0 {
		return false
	}
	if name, ok := strings.CutSuffix(rest[0], ":"); ok && zoneNames[name] {
		m.endFree(l)
		mi := m.mi(l)
		z := m.zone(mi, node, name)
		if mi.Zones[z].FreeList != nil {
			m.note(l.n, "zone %s: a second free-list line, not read", name)
			return true
		}
		mi.Zones[z].FreeList = &FreeList{}
		m.mem.flOpen, m.mem.flZone, m.mem.flLine, m.mem.flLast, m.mem.wantTotal, m.mem.carry = true, z, l.n, -1, false, ""
		m.mem.last = partOther
		m.freeWords(l, rest[1:])
		return true
	}
	if zoneNames[rest[0]] && len(rest) >= 2 {
		if rest[1] == "per-cpu:" { // 2.6's pageset dump
			m.mem.last = partOther
			return m.open.MemInfo != nil
		}
		if strings.HasPrefix(rest[1], "free:") {
			m.endFree(l)
			mi := m.mi(l)
			z := m.zone(mi, node, rest[0])
			if mi.Zones[z].HaveStats {
				// A second dump with no "Mem-Info:" line: its own report.
				m.start(&Report{Kind: KindMemInfo, Header: t}, l)
				mi = m.mi(l)
				z = m.zone(mi, node, rest[0])
			}
			zz := &mi.Zones[z]
			zz.HaveStats = true
			m.mem.zone, m.mem.last = z, partZone
			m.kv(l, rest[1:], zz.set, zz.flag)
			return true
		}
	}
	if node >= 0 && strings.HasPrefix(rest[0], "hugepages_total=") {
		m.endFree(l)
		mi := m.mi(l)
		h := Hugepages{Node: node}
		for _, w := range rest {
			k, v, _ := strings.Cut(w, "=")
			n, err := strconv.ParseUint(strings.TrimSuffix(v, "kB"), 10, 64)
			if err != nil {
				m.note(l.n, "hugepages: unreadable %q", clip(w))
				continue
			}
			switch k {
			case "hugepages_total":
				h.Total = n
			case "hugepages_free":
				h.Free = n
			case "hugepages_surp":
				h.Surp = n
			case "hugepages_size":
				h.SizeKB = n
			}
		}
		mi.Hugepages = append(mi.Hugepages, h)
		m.mem.last = partOther
		return true
	}
	mi := m.open.MemInfo
	if node >= 0 && isKV(rest[0]) {
		// 4.8+ per-node line: "Node 0 active_anon:...kB ... all_unreclaimable? no".
		mi = m.mi(l)
		mi.Nodes = append(mi.Nodes, MemInfoNode{Node: node, Counters: map[string]uint64{}})
		n := &mi.Nodes[len(mi.Nodes)-1]
		m.mem.node, m.mem.last = len(mi.Nodes)-1, partNode
		m.kv(l, rest, func(k string, v uint64) { n.Counters[k] = v }, n.flag)
		return true
	}
	if mi == nil {
		return false
	}
	if f[0] == "lowmem_reserve[]:" {
		m.endFree(l)
		if m.mem.last != partZone && m.mem.last != partOther || len(mi.Zones) == 0 {
			m.note(l.n, "lowmem_reserve[] with no zone line before it")
			return true
		}
		z := &mi.Zones[m.mem.zone]
		z.Protection = z.Protection[:0]
		for _, w := range f[1:] {
			n, err := strconv.ParseUint(w, 10, 64)
			if err != nil {
				m.note(l.n, "zone %s lowmem_reserve: unreadable %q", z.Zone, clip(w))
				break
			}
			z.Protection = append(z.Protection, n)
		}
		m.mem.last = partOther
		mi.Lines.Last = l.n
		return true
	}
	if isKV(f[0]) || strings.HasSuffix(f[0], "?") && counterName(f[0][:len(f[0])-1]) {
		switch {
		case m.mem.last == partZone:
			z := &mi.Zones[m.mem.zone]
			m.kv(l, f, z.set, z.flag)
		case m.mem.last == partNode:
			n := &mi.Nodes[m.mem.node]
			m.kv(l, f, func(k string, v uint64) { n.Counters[k] = v }, n.flag)
		case len(mi.Zones) == 0 && len(mi.Nodes) == 0:
			if mi.Global == nil {
				mi.Global = map[string]uint64{}
			}
			m.mem.last = partGlobal
			m.kv(l, f, func(k string, v uint64) { mi.Global[k] = v }, func(string, bool) {})
		default:
			return false
		}
		mi.Lines.Last = l.n
		return true
	}
	if m.summary(mi, f) {
		m.endFree(l)
		m.mem.last = partOther
		mi.Lines.Last = l.n
		return true
	}
	if len(f) >= 3 && f[0] == "CPU" && strings.Contains(t, "hi:") { // 2.6 pageset rows
		return true
	}
	return false
}

// isKV matches "name:123", "name:123kB", "isolated(anon):0kB".
func isKV(w string) bool {
	i := strings.IndexByte(w, ':')
	return i > 0 && i+1 < len(w) && w[i+1] >= '0' && w[i+1] <= '9' && counterName(w[:i])
}

// counterName matches the kernel's counter names: "active_anon",
// "isolated(anon)", "all_unreclaimable", "Active" (2.6).
func counterName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isWordByte(c) || c == '(' || c == ')' || c == '+' || c == '-') {
			return false
		}
	}
	return s != ""
}

// kv reads "name:value[kB]" words and "name? yes|no" pairs.
func (m *machine) kv(l msgLine, f []string, set func(string, uint64), flag func(string, bool)) {
	for i := 0; i < len(f); i++ {
		w := f[i]
		if name, ok := strings.CutSuffix(w, "?"); ok && counterName(name) {
			if i+1 < len(f) && (f[i+1] == "yes" || f[i+1] == "no") {
				flag(name, f[i+1] == "yes")
				i++
				continue
			}
			m.note(l.n, "unreadable %q", clip(w))
			continue
		}
		k, v, ok := strings.Cut(w, ":")
		if ok && v == "" && i+1 < len(f) && startsDigit(f[i+1]) {
			v = f[i+1] // 4.9-4.13 print "shmem_thp: 0kB"
			i++
		}
		if !ok || k == "" {
			m.note(l.n, "unreadable %q", clip(w))
			continue
		}
		v = strings.TrimSuffix(strings.TrimSuffix(v, "kB"), "KB")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			m.note(l.n, "%s: unreadable value %q", k, clip(w))
			continue
		}
		set(k, n)
	}
}

func (z *MemInfoZone) set(k string, v uint64) {
	if z.Counters == nil {
		z.Counters = map[string]uint64{}
	}
	z.Counters[k] = v
	switch k {
	case "free":
		z.FreeKB = v
	case "boost":
		z.BoostKB = v
	case "min":
		z.MinKB = v
	case "low":
		z.LowKB = v
	case "high":
		z.HighKB = v
	case "reserved_highatomic":
		z.ReservedHighatomicKB = v
	case "present":
		z.PresentKB = v
	case "managed":
		z.ManagedKB = v
	case "mlocked":
		z.MlockedKB = v
	case "free_pcp":
		z.FreePCPKB = v
	case "local_pcp":
		z.LocalPCPKB = v
	case "free_cma":
		z.FreeCMAKB = v
	}
}

func (z *MemInfoZone) flag(k string, v bool) {
	if z.Flags == nil {
		z.Flags = map[string]bool{}
	}
	z.Flags[k] = v
}

func (n *MemInfoNode) flag(k string, v bool) {
	if n.Flags == nil {
		n.Flags = map[string]bool{}
	}
	n.Flags[k] = v
}

// zone returns the index of (node, name) in mi.Zones, adding it.
func (m *machine) zone(mi *MemInfo, node int, name string) int {
	for i := range mi.Zones {
		if mi.Zones[i].Node == node && mi.Zones[i].Zone == name {
			return i
		}
	}
	mi.Zones = append(mi.Zones, MemInfoZone{Node: node, Zone: name})
	return len(mi.Zones) - 1
}

// summaryKeys names show_mem's closing lines "N <phrase>".
var summaryKeys = map[string]string{
	"total pagecache pages":     "pagecache_pages",
	"pages in swap cache":       "swap_cache_pages",
	"pages RAM":                 "ram_pages",
	"pages of RAM":              "ram_pages",
	"pages HighMem/MovableOnly": "highmem_pages",
	"pages HighMem":             "highmem_pages",
	"pages of HIGHMEM":          "highmem_pages",
	"pages reserved":            "reserved_pages",
	"reserved pages":            "reserved_pages",
	"pages cma reserved":        "cma_reserved_pages",
	"pages hwpoisoned":          "hwpoisoned_pages",
	"pages shared":              "shared_pages",
	"pages non-shared":          "nonshared_pages",
	"pages swap cached":         "swap_cache_pages",
	"free pages":                "free_pages",
}

// summary reads show_mem's closing lines.
func (m *machine) summary(mi *MemInfo, f []string) bool {
	set := func(k string, v uint64) {
		if mi.Summary == nil {
			mi.Summary = map[string]uint64{}
		}
		mi.Summary[k] = v
	}
	if len(f) >= 4 && (f[0] == "Free" || f[0] == "Total") && f[1] == "swap" && f[2] == "=" {
		if v, err := strconv.ParseUint(strings.TrimSuffix(f[3], "kB"), 10, 64); err == nil {
			set(strings.ToLower(f[0])+"_swap_kB", v)
			return true
		}
	}
	if len(f) >= 3 && f[0] == "Swap" && f[1] == "cache" && f[2] == "stats:" {
		return true
	}
	if len(f) >= 2 && startsDigit(f[0]) {
		if k, ok := summaryKeys[strings.Join(f[1:], " ")]; ok {
			if v, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				set(k, v)
				return true
			}
		}
	}
	return false
}

// freeCont extends an open free-list line with a line that goes on with
// its columns; another Mem-Info line ends it as cut.
func (m *machine) freeCont(l msgLine, f []string) bool {
	w := f[0]
	if m.mem.carry != "" || m.mem.wantTotal || w == "=" || strings.HasPrefix(w, "(") || strings.Contains(w, "*") || strings.Contains(w, "_") && strings.HasSuffix(w, "kB") || strings.HasSuffix(w, "kB") && startsDigit(w) && !strings.Contains(w, ":") {
		if _, rest := splitNode(f); len(rest) > 0 && strings.HasSuffix(rest[0], ":") {
			return false // the next zone's line
		}
		m.open.MemInfo.Lines.Last = l.n
		m.freeWords(l, f)
		return true
	}
	return false
}

// endFree ends an open free-list line that never got its total.
func (m *machine) endFree(l msgLine) {
	if !m.mem.flOpen {
		return
	}
	m.mem.flOpen = false
	z := &m.open.MemInfo.Zones[m.mem.flZone]
	if m.mem.carry != "" {
		m.note(m.mem.flLine, "zone %s free list: unreadable %q", z.Zone, clip(m.mem.carry))
	}
	m.note(m.mem.flLine, "zone %s free list: cut before its \"= NkB\" total", z.Zone)
}

// freeWords reads free-list words: "34178*4kB", "(UEM)", "=", "311640kB".
// Each column's order comes from its block size, so a lost column leaves a
// hole (FreeList.Known) instead of shifting the rest. A word that cannot be
// read ends the line (what follows is likely another message printed into
// it); a last word that cannot be read is kept, in case a wrap cut it.
func (m *machine) freeWords(l msgLine, f []string) {
	z := &m.open.MemInfo.Zones[m.mem.flZone]
	fl := z.FreeList
	for i, w := range f {
		if m.mem.carry != "" {
			w, m.mem.carry = m.mem.carry+w, ""
		}
		if strings.IndexByte(w, '\\') >= 0 {
			w = strings.ReplaceAll(w, `\`, "") // Markdown's escaped "\*"
		}
		switch {
		case m.mem.wantTotal || strings.HasPrefix(w, "=") && len(w) > 1:
			v, ok := parseKBWord(strings.TrimPrefix(w, "="))
			if !ok {
				if i == len(f)-1 {
					m.mem.carry = w
					return
				}
				m.note(l.n, "zone %s free list: unreadable total %q", z.Zone, clip(w))
			} else {
				fl.TotalKB, fl.HaveTotal = v, true
			}
			m.mem.flOpen, m.mem.wantTotal = false, false
			return
		case w == "=":
			m.mem.wantTotal = true
		case strings.HasPrefix(w, "("):
			if !strings.HasSuffix(w, ")") {
				if i == len(f)-1 {
					m.mem.carry = w
					return
				}
				m.note(l.n, "zone %s free list: unreadable %q", z.Zone, clip(w))
				return
			}
			letters := w[1 : len(w)-1]
			if m.mem.flLast < 0 || !migrateLetters(letters) {
				continue // a reader's annotation such as "(2.5G)"
			}
			fl.Types[m.mem.flLast] = letters
		case isElision(w):
			m.note(l.n, "zone %s free list: elided columns", z.Zone)
		default:
			count, size, ok := blockWord(w, fl.PageKB, m.mem.flLast+1)
			if !ok {
				if i == len(f)-1 {
					m.mem.carry = w
					return
				}
				m.note(l.n, "zone %s free list: unreadable %q", z.Zone, clip(w))
				return
			}
			if fl.PageKB == 0 {
				fl.PageKB = size
			}
			o, ok := orderOf(size, fl.PageKB)
			if !ok {
				m.note(l.n, "zone %s free list: block size %dkB is not a power of two of %dkB", z.Zone, size, fl.PageKB)
				return
			}
			for len(fl.Count) <= o {
				fl.Count = append(fl.Count, 0)
				fl.Types = append(fl.Types, "")
				fl.Known = append(fl.Known, false)
			}
			if fl.Known[o] {
				m.note(l.n, "zone %s free list: order %d printed twice", z.Zone, o)
				return
			}
			fl.Count[o], fl.Known[o] = count, true
			m.mem.flLast = o
		}
	}
}

func migrateLetters(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if migratetypeLetters[s[i]] == "" {
			return false
		}
	}
	return true
}

// orderOf returns o with size == pageKB << o.
func orderOf(size, pageKB uint64) (int, bool) {
	if pageKB == 0 || size%pageKB != 0 {
		return 0, false
	}
	q := size / pageKB
	if q&(q-1) != 0 {
		return 0, false
	}
	return bits.TrailingZeros64(q), true
}

func parseKBWord(w string) (uint64, bool) {
	num, ok := strings.CutSuffix(w, "kB")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(num, 10, 64)
	return v, err == nil
}

// blockWord reads "34178*4kB". Markdown renders "a*4kB ... b*8kB" as italics
// and drops both '*': "341784kB"; then the column's expected size (pageKB <<
// order, or a common page size for the first column) splits the digits.
func blockWord(w string, pageKB uint64, order int) (count, size uint64, ok bool) {
	// GitHub's Markdown also turns "a*4kB b*8kB" into "a_4kB b_8kB" when
	// a reader converts the italics back to text.
	sep := "*"
	if !strings.Contains(w, "*") && strings.Contains(w, "_") {
		sep = "_"
	}
	if c, s, found := strings.Cut(w, sep); found {
		count, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		size, ok := parseKBWord(s)
		return count, size, ok && size > 0
	}
	digits, found := strings.CutSuffix(w, "kB")
	if !found || digits == "" {
		return 0, 0, false
	}
	try := []uint64{4, 64, 16, 8}
	if pageKB > 0 {
		if order >= 63 || bits.LeadingZeros64(pageKB) <= order {
			return 0, 0, false
		}
		try = []uint64{pageKB << order}
	}
	for _, s := range try {
		ss := strconv.FormatUint(s, 10)
		if c, ok := strings.CutSuffix(digits, ss); ok && c != "" {
			if n, err := strconv.ParseUint(c, 10, 64); err == nil {
				return n, s, true
			}
		}
	}
	return 0, 0, false
}

// endMem finishes the open report's dump: a free list left open is cut;
// a free list whose columns do not add up to its total is said to be so.
func (m *machine) endMem() {
	mi := m.open.MemInfo
	if mi == nil {
		return
	}
	if m.mem.flOpen {
		m.endFree(msgLine{n: m.mem.flLine})
	}
	for i := range mi.Zones {
		fl := mi.Zones[i].FreeList
		if fl == nil {
			continue
		}
		if len(fl.Count) == 0 {
			mi.Zones[i].FreeList = nil
			continue
		}
		if mi.PageKB == 0 {
			mi.PageKB = fl.PageKB
		}
		all := true
		for _, k := range fl.Known {
			all = all && k
		}
		if all {
			fl.Known = nil
			var sum uint64
			for o, n := range fl.Count {
				sum += n * (fl.PageKB << o)
			}
			if fl.HaveTotal && sum != fl.TotalKB {
				m.open.Unreadable = append(m.open.Unreadable, "zone "+mi.Zones[i].Zone+" free list: columns add up to "+strconv.FormatUint(sum, 10)+"kB, the line says "+strconv.FormatUint(fl.TotalKB, 10)+"kB")
			}
		}
		empty := true
		for _, t := range fl.Types {
			empty = empty && t == ""
		}
		if empty {
			fl.Types = nil
		}
	}
}
