package procfs

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
)

// MemInfoFreeList is one zone's free-list line of a kernel Mem-Info dump, as
// printed by show_free_areas after a page allocation failure or an OOM kill:
//
//	Node 0 Normal: 34178*4kB (UEM) 20118*8kB (UEM) 412*16kB (UEM) ... 0*4096kB = 311640kB
type MemInfoFreeList struct {
	Line int    // 1-based line number in the input
	Node int    // -1 when the kernel printed no "Node N" (built without CONFIG_NUMA)
	Zone string // "DMA", "DMA32", "Normal", ...
	// Free[o] is the number of free blocks of order o.
	Free []uint64
	// Types[o] holds the migratetype letters printed after a non-empty order
	// ("UEM": Unmovable, rEclaimable, Movable; H HighAtomic, C CMA, I Isolate,
	// R Reserve on old kernels); "" when none were printed, as before 3.x.
	Types []string
	// PageKB is the size of an order-0 block in kB (4 on x86_64).
	PageKB uint64
	// TotalKB is the "= NkB" total as printed. On a real kernel it is the sum
	// of Free[o] * PageKB << o, computed under the zone lock; it is NOT the
	// zone's "free:" counter of the same dump, which also moves with per-cpu
	// lists and counter drift. It is not re-checked: see SumKB.
	TotalKB uint64
}

// SumKB returns the free memory the lists add up to, in kB.
func (l MemInfoFreeList) SumKB() uint64 {
	var kb uint64
	for o, n := range l.Free {
		kb += n * (l.PageKB << o)
	}
	return kb
}

// ParseMemInfoFreeLists extracts the free-list lines from a kernel log or a
// Mem-Info dump. Any other line (the "free:... min:..." zone lines, hugepage
// counts, stack traces) is skipped, and so is any prefix of a free-list line
// (printk timestamp, syslog header). A line is a free-list line when a
// "ZONE:" field is followed by a "N*SIZEkB" field; such a line must then be
// complete and consistent (sizes doubling from the first, "= NkB" at the end)
// or it is an error: a free list split by interleaved console output is not
// silently read as fewer orders.
func ParseMemInfoFreeLists(r io.Reader) ([]MemInfoFreeList, error) {
	var out []MemInfoFreeList
	err := lines(r, "meminfo", func(n int, line string) error {
		f := strings.Fields(line)
		start := -1
		for i := 0; i+1 < len(f); i++ {
			if len(f[i]) > 1 && strings.HasSuffix(f[i], ":") && isBlockField(f[i+1]) {
				start = i
				break
			}
		}
		if start < 0 {
			return nil
		}
		l := MemInfoFreeList{Line: n, Node: -1, Zone: strings.TrimSuffix(f[start], ":")}
		if start >= 2 && f[start-2] == "Node" {
			node, err := parseNode(f[start-1])
			if err != nil {
				return fmt.Errorf("zone %q: %w", l.Zone, err)
			}
			l.Node = node
		}
		if err := parseFreeList(&l, f[start+1:]); err != nil {
			return fmt.Errorf("zone %q: %w", l.Zone, err)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parseFreeList parses "N*SkB [(TYPES)] ... = TOTALkB" into l.
func parseFreeList(l *MemInfoFreeList, f []string) error {
	for i := 0; i < len(f); i++ {
		tok := f[i]
		if tok == "=" {
			if i+2 != len(f) {
				return errors.New("want exactly one \"NkB\" total after \"=\"")
			}
			total, ok := parseKB(f[i+1])
			if !ok {
				return fmt.Errorf("invalid total %q", f[i+1])
			}
			if len(l.Free) == 0 {
				return errors.New("no free-list columns")
			}
			l.TotalKB = total
			return nil
		}
		if strings.HasPrefix(tok, "(") {
			if !strings.HasSuffix(tok, ")") || len(tok) < 2 || len(l.Types) == 0 || l.Types[len(l.Types)-1] != "" {
				return fmt.Errorf("unexpected %q", tok)
			}
			l.Types[len(l.Types)-1] = tok[1 : len(tok)-1]
			continue
		}
		count, size, ok := splitBlockField(tok)
		if !ok {
			return fmt.Errorf("invalid free-list field %q", tok)
		}
		order := len(l.Free)
		if order == 0 {
			if size == 0 {
				return fmt.Errorf("invalid block size in %q", tok)
			}
			l.PageKB = size
		} else if order >= 64 || bits.LeadingZeros64(l.PageKB) <= order || size != l.PageKB<<order {
			return fmt.Errorf("order %d: block size in %q, want %dkB", order, tok, l.PageKB<<min(order, 63))
		}
		l.Free = append(l.Free, count)
		l.Types = append(l.Types, "")
	}
	return errors.New("missing \"= NkB\" total (line cut short?)")
}

func isBlockField(s string) bool {
	_, _, ok := splitBlockField(s)
	return ok
}

// splitBlockField parses "34178*4kB".
func splitBlockField(s string) (count, sizeKB uint64, ok bool) {
	c, sz, found := strings.Cut(s, "*")
	if !found {
		return 0, 0, false
	}
	count, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	sizeKB, ok = parseKB(sz)
	return count, sizeKB, ok
}

func parseKB(s string) (uint64, bool) {
	num, found := strings.CutSuffix(s, "kB")
	if !found {
		return 0, false
	}
	v, err := strconv.ParseUint(num, 10, 64)
	return v, err == nil
}
