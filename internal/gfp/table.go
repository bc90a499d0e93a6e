package gfp

import (
	"strconv"
	"strings"

	"github.com/fragscope/fragscope/internal/event"
)

// Table decodes gfp masks with one kernel's flag table. It is immutable and
// safe for concurrent use.
type Table struct {
	flags   []event.Flag      // non-zero entries, kernel order
	byName  map[string]uint64 // first value for each name
	classes []event.Flag      // entries usable as an allocation class, kernel order
}

// classNames are the GFP_* combinations that name an allocation context
// ("useful GFP flag combinations" in include/linux/gfp_types.h). Only the
// names are fixed here; their values always come from the kernel's table.
// GFP_DMA and GFP_DMA32 are zone modifiers, and 3.x tables name single bits
// "GFP_COMP" or "GFP_WAIT", so "starts with GFP_" would not do.
var classNames = map[string]bool{
	"GFP_TRANSHUGE":        true,
	"GFP_TRANSHUGE_LIGHT":  true,
	"GFP_HIGHUSER_MOVABLE": true,
	"GFP_HIGHUSER":         true,
	"GFP_USER":             true,
	"GFP_TEMPORARY":        true, // until 4.14
	"GFP_KERNEL_ACCOUNT":   true,
	"GFP_KERNEL":           true,
	"GFP_NOFS":             true,
	"GFP_ATOMIC":           true,
	"GFP_NOIO":             true,
	"GFP_NOWAIT":           true,
}

// NewTable builds a Table from a flag table in kernel order, as returned by
// ParseTracefsFormat or carried in a recording.
//
// Entries whose value is 0 are dropped. A flag compiled out (3.10's
// GFP_NOTRACK without CONFIG_KMEMCHECK) evaluates to 0, and the kernel's
// trace_print_flags_seq would then print its name for every mask that still
// has bits left when the loop reaches it: noise, not information.
func NewTable(flags []event.Flag) *Table {
	t := &Table{byName: make(map[string]uint64, len(flags))}
	for _, f := range flags {
		if f.Value == 0 {
			continue
		}
		t.flags = append(t.flags, f)
		if _, dup := t.byName[f.Name]; !dup {
			t.byName[f.Name] = f.Value
		}
		if classNames[f.Name] {
			t.classes = append(t.classes, f)
		}
	}
	return t
}

// Flags returns the table's non-zero entries in kernel order. The caller
// must not modify the slice.
func (t *Table) Flags() []event.Flag { return t.flags }

// Format renders gfp the way the kernel's show_gfp_flags does: entries are
// tried in table order, each one whose bits are all present is printed and
// its bits consumed, and any bits left over are printed in hex. 0 is "none".
// When a single name covers the whole mask, the name is returned without
// allocating; otherwise the result costs one allocation.
func (t *Table) Format(gfp uint64) string {
	if gfp == 0 {
		return "none"
	}
	// Each match consumes at least one bit, so there are at most 64.
	var matched [64]int32
	n, size := 0, 0
	rest := gfp
	for i := 0; i < len(t.flags) && rest != 0; i++ {
		m := t.flags[i].Value
		if rest&m != m {
			continue
		}
		rest &^= m
		matched[n] = int32(i)
		n++
		size += len(t.flags[i].Name) + 1
	}
	if n == 1 && rest == 0 {
		return t.flags[matched[0]].Name
	}
	var hex [18]byte
	hx := hex[:0]
	if rest != 0 {
		hx = strconv.AppendUint(append(hx, "0x"...), rest, 16)
		size += len(hx) + 1
	}
	var b strings.Builder
	b.Grow(size)
	for k := 0; k < n; k++ {
		if k > 0 {
			b.WriteByte('|')
		}
		b.WriteString(t.flags[matched[k]].Name)
	}
	if rest != 0 {
		if n > 0 {
			b.WriteByte('|')
		}
		b.Write(hx)
	}
	return b.String()
}

// Lookup returns the mask named name in this kernel's table. A "__GFP_X"
// name also finds a single-bit "GFP_X" entry: kernels before 4.4 print
// single bits without the underscores ("GFP_COMP", "GFP_KMEMCG"). ok is false
// when this kernel has no such flag (e.g. __GFP_ACCOUNT on 3.10).
func (t *Table) Lookup(name string) (mask uint64, ok bool) {
	if m, ok := t.byName[name]; ok {
		return m, true
	}
	if short, cut := strings.CutPrefix(name, "__"); cut {
		if m, ok := t.byName[short]; ok && m&(m-1) == 0 {
			return m, true
		}
	}
	return 0, false
}

// Has reports whether every bit of the flag called name is set in gfp. It is
// false when the kernel's table has no such flag.
func (t *Table) Has(gfp uint64, name string) bool {
	m, ok := t.Lookup(name)
	return ok && gfp&m == m
}

// Class returns a short allocation class for aggregation: the first
// GFP_* combination of the table (most bits first) whose bits are all in
// gfp, such as "GFP_KERNEL", "GFP_ATOMIC" or "GFP_HIGHUSER_MOVABLE"; "none"
// for 0 and "other" when no combination matches. It does not allocate.
func (t *Table) Class(gfp uint64) string {
	if gfp == 0 {
		return "none"
	}
	for _, c := range t.classes {
		if gfp&c.Value == c.Value {
			return c.Name
		}
	}
	return "other"
}
