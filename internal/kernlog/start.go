package kernlog

import (
	"slices"
	"strconv"
	"strings"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/kmsg"
)

// tableFor returns the generated gfp table of a kernel release's era;
// when the release is unknown the flag names the log printed are the table.
var tableFor = gfp.ForRelease

// Start is the session header of a log: the kernel the reports name, the
// gfp table of its era (else one made of the names the log printed), its
// migratetypes, and the hooks: "kmsg" attached, the BPF ones not. GFPEra
// says which table was used.
func Start(reports []kmsg.Report, source, version string) (st event.Start, gfpEra string) {
	st = event.Start{Time: Epoch, Version: version, PageSize: 4096, PageblockOrder: 9}
	for _, r := range reports {
		if r.Kernel.Release != "" {
			st.KernelRelease = r.Kernel.Release
			break
		}
	}
	for _, r := range reports {
		if r.MemInfo != nil && r.MemInfo.PageKB > 0 {
			st.PageSize = uint32(r.MemInfo.PageKB * 1024)
			break
		}
	}
	if flags, era, ok := tableFor(st.KernelRelease); ok {
		st.GFPFlags, gfpEra = flags, "the "+era+" table"
	} else if guess := guessOld(reports); guess != "" {
		flags, era, _ := tableFor(guess)
		st.GFPFlags, gfpEra = flags, "the "+era+" table, a guess: the log names no kernel and prints no "+
			"flag names, which warn_alloc prints from 4.9 on"
	} else {
		st.GFPFlags, gfpEra = printedNames(reports), "the names the log printed"
	}
	st.Migratetypes = Migratetypes(st.KernelRelease)
	st.Hooks = Hooks(source)
	return st, gfpEra
}

// guessOld returns a release whose table stands for a log that names no
// kernel and prints masks without names: such a log is from before 4.9,
// whose warn_alloc first printed names (%pGg), so the 3.10 table, whose
// low bits 2.6 .. 4.3 share, decodes it best. "" when the log names a
// kernel or prints names.
func guessOld(reports []kmsg.Report) string {
	have := false
	for _, r := range reports {
		if r.Kernel.Release != "" || len(r.GFPNames) > 0 {
			return ""
		}
		have = have || r.HaveGFP
	}
	if !have {
		return ""
	}
	return "3.10.0"
}

// Hooks are the statuses of a session whose only source is the kernel log:
// the synthetic kmsg hook attached, every BPF hook not, so the correlator
// keeps evidence from outside syscalls and the advice does not ask for
// hooks a log cannot have.
func Hooks(source string) []event.HookStatus {
	out := []event.HookStatus{{Hook: Hook, Mechanism: "log", Target: source, Attached: true}}
	for _, h := range []string{"page_alloc", "alloc_fexit", "extfrag", "slab_create", "netns", "ns_syscall"} {
		out = append(out, event.HookStatus{Hook: h, Reason: "reading a kernel log: no BPF"})
	}
	return out
}

// printedNames builds a gfp table from what the log printed: each mask with
// the names printed after it ("0x14200ca(GFP_HIGHUSER_MOVABLE)") is one
// entry, so the report shows the kernel's own words. Masks of the same
// names keep the first.
func printedNames(reports []kmsg.Report) []event.Flag {
	var out []event.Flag
	seen := map[uint64]bool{}
	for _, r := range reports {
		if !r.HaveGFP || len(r.GFPNames) == 0 || seen[r.GFP] || r.GFP == 0 {
			continue
		}
		seen[r.GFP] = true
		out = append(out, event.Flag{Name: strings.Join(r.GFPNames, "|"), Value: r.GFP})
	}
	// Most bits first, as gfp.Table matches combinations.
	slices.SortStableFunc(out, func(a, b event.Flag) int { return popcount(b.Value) - popcount(a.Value) })
	return out
}

func popcount(v uint64) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// Migratetypes is enum migratetype of a release: the era's generated
// names, else (a release gfp does not parse) the two layouts: 4.4 swapped Movable and Reclaimable and put HighAtomic where
// Reserve was (commit 016c13daa5c9 "mm, page_alloc: use masks and shifts
// when converting GFP flags to migrate types", 0aaa29a56e4f "mm, page_alloc:
// reserve pageblocks for high-order atomic allocations on demand").
func Migratetypes(release string) []string {
	if mts := gfp.FallbackMigratetypes(release); mts != nil {
		return mts
	}
	if before44(release) {
		return []string{"Unmovable", "Reclaimable", "Movable", "Reserve", "CMA", "Isolate"}
	}
	return []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"}
}

func before44(release string) bool {
	a, rest, ok := strings.Cut(release, ".")
	if !ok {
		return false
	}
	b, _, _ := strings.Cut(rest, ".")
	if i := strings.IndexFunc(b, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = b[:i]
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return err1 == nil && err2 == nil && (x < 4 || (x == 4 && y < 4))
}
