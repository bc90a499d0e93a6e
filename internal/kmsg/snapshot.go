package kmsg

import (
	"time"

	"github.com/fragscope/fragscope/internal/snapshot"
)

// migratetypeLetters maps show_migration_types' letters to the names
// /proc/pagetypeinfo uses (snapshot.Zone.FreeByMigratetype keys). 'R'
// (MIGRATE_RESERVE) existed until 4.4, when 'H' (MIGRATE_HIGHATOMIC) took
// its place (commit 0aaa29a56e4f).
var migratetypeLetters = map[byte]string{
	'U': "Unmovable",
	'M': "Movable",
	'E': "Reclaimable",
	'H': "HighAtomic",
	'C': "CMA",
	'I': "Isolate",
	'R': "Reserve",
}

// MigratetypeName returns the pagetypeinfo name of a migratetype letter
// printed in a free-list line, "" for a letter the kernel does not print.
func MigratetypeName(letter byte) string { return migratetypeLetters[letter] }

// PageKB returns the zone's base page size in kB: its free list's unit,
// else def (the dump's, or 4 when the caller knows nothing better).
func (z MemInfoZone) PageKB(def uint64) uint64 {
	if z.FreeList != nil && z.FreeList.PageKB > 0 {
		return z.FreeList.PageKB
	}
	if def == 0 {
		return 4
	}
	return def
}

// Snapshot converts the zone into the model live snapshots use, with
// counts in pages (kB / page size) and free blocks by order.
//
// What a Mem-Info line can and cannot give:
//   - FreeBlocks: exactly, from the free-list line (Count). An order whose
//     column could not be read is 0 there; check FreeList.Known.
//   - FreeByMigratetype: the letters after a count name the lists that hold
//     at least one block of that order, not how many each holds. Only when
//     every non-zero order names exactly one list is the split known; then
//     the map is filled (every list printed anywhere gets an entry of
//     len(FreeBlocks) orders). Otherwise it stays nil: a "(UEM)" order could
//     be 1+1+N or N+1+1. The letters are still in FreeList.Types for a
//     consumer that needs "sits only on H or C lists" (no U/M/E letter).
//   - PageblocksByMigratetype and the pageblock order: never printed.
//   - FreeTypeLetters: the letters as printed, per order.
//   - Protection: lowmem_reserve[] as printed (pages); nil when not printed.
//   - Min/Low/High/Managed/Present/NrFree/FreeCMA/ReservedHighatomic: from
//     the stats line (kB rounded
//     down to pages, exact since the kernel printed pages << (PAGE_SHIFT-10)).
//     HaveWatermarks is false when the stats line was not read.
//
// pageKB is the page size to use when the zone has no free-list line (0:
// the dump's own, else 4).
func (z MemInfoZone) Snapshot(pageKB uint64) snapshot.Zone {
	pk := z.PageKB(pageKB)
	node := z.Node
	if node < 0 {
		node = 0 // no CONFIG_NUMA: the one node is node 0
	}
	out := snapshot.Zone{Node: node, Name: z.Zone}
	if fl := z.FreeList; fl != nil {
		out.FreeBlocks = append([]uint64(nil), fl.Count...)
		out.FreeByMigratetype = splitByLetters(fl)
		if fl.Types != nil {
			out.FreeTypeLetters = append([]string(nil), fl.Types...)
		}
	}
	if z.Protection != nil {
		out.Protection = append([]uint64(nil), z.Protection...) // printed in pages already
	}
	if z.HaveStats {
		out.HaveWatermarks = true
		out.Min = z.MinKB / pk
		out.Low = z.LowKB / pk
		out.High = z.HighKB / pk
		out.Managed = z.ManagedKB / pk
		out.Present = z.PresentKB / pk
		out.NrFree = z.FreeKB / pk
		out.FreeCMA = z.FreeCMAKB / pk
		out.ReservedHighatomic = z.ReservedHighatomicKB / pk
	}
	return out
}

// splitByLetters returns free blocks per migratetype when the letters
// determine it, else nil (see Snapshot).
func splitByLetters(fl *FreeList) map[string][]uint64 {
	if len(fl.Types) != len(fl.Count) {
		return nil
	}
	out := map[string][]uint64{}
	for o, n := range fl.Count {
		t := fl.Types[o]
		if n == 0 {
			continue
		}
		if len(t) != 1 || migratetypeLetters[t[0]] == "" {
			return nil
		}
		name := migratetypeLetters[t[0]]
		if out[name] == nil {
			out[name] = make([]uint64, len(fl.Count))
		}
		out[name][o] = n
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Snapshot converts the whole dump. The page size is the dump's (PageKB),
// else 4 kB; when is the time to stamp it with (the report's wall time, if
// the log had one).
func (m *MemInfo) Snapshot(when time.Time) snapshot.Snapshot {
	pk := m.PageKB
	if pk == 0 {
		pk = 4
	}
	s := snapshot.Snapshot{Time: when, PageSize: uint32(pk * 1024)}
	for _, z := range m.Zones {
		s.Zones = append(s.Zones, z.Snapshot(pk))
	}
	return s
}
