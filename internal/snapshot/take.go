package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/fragscope/fragscope/internal/procfs"
)

// Take reads root+"/proc/buddyinfo", root+"/proc/zoneinfo" and, when
// readable, root+"/proc/pagetypeinfo" and root+"/proc/sys/vm/extfrag_threshold",
// and returns the snapshot. root "" is the live system; tests pass a copied
// tree. pagetypeinfo is root-only (0400): without permission, or when the
// file is absent, the migratetype fields stay nil and PageblockOrder 0.
//
// Take runs every interval and on every failure event, so it reads each file
// once with a single read and keeps no state. Zones come in zoneinfo order
// (every zone, populated or not), followed by any zone only buddyinfo listed.
// PageSize is this machine's, also for a copied tree.
//
// Cost on the 6.18 development machine: 5-7 ms as root, nearly all of it
// pagetypeinfo (the kernel walks every free list under the zone lock), against
// about 0.25 ms without it; see TakeWith to leave it out on the hot path.
func Take(root string) (*Snapshot, error) { return TakeWith(root, Options{}) }

// Options tune TakeWith.
type Options struct {
	// SkipPagetypeinfo leaves out /proc/pagetypeinfo: the migratetype fields
	// stay nil and PageblockOrder 0, and the snapshot costs ~20x less.
	SkipPagetypeinfo bool
}

// TakeWith is Take with options.
func TakeWith(root string, o Options) (*Snapshot, error) {
	now := time.Now()
	buddy, err := readParse(root, "/proc/buddyinfo", procfs.ParseBuddyinfo)
	if err != nil {
		return nil, err
	}
	zinfo, err := readParse(root, "/proc/zoneinfo", procfs.ParseZoneinfo)
	if err != nil {
		return nil, err
	}
	var pti *procfs.Pagetypeinfo
	if !o.SkipPagetypeinfo {
		pti, err = readParse(root, "/proc/pagetypeinfo", procfs.ParsePagetypeinfo)
		if err != nil && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	s := &Snapshot{Time: now, PageSize: uint32(os.Getpagesize())}
	s.Zones = merge(buddy, zinfo)
	if pti != nil {
		applyPagetypeinfo(s, pti)
	}
	if th, ok := readInt(root + "/proc/sys/vm/extfrag_threshold"); ok {
		s.ExtfragThreshold = &th
	}
	if c, err := readParse(root, "/proc/vmstat", procfs.ParseVmstatCompaction); err == nil {
		s.Compaction = &c
	}
	if p, ok := readInt(root + "/proc/sys/vm/compaction_proactiveness"); ok {
		s.CompactionProactiveness = &p
	}
	return s, nil
}

// readParse reads a whole file (proc files are generated per read call, so
// one large read is cheapest and most consistent) and parses it.
func readParse[T any](root, name string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile(root + name)
	if err != nil {
		return zero, fmt.Errorf("snapshot: %w", err)
	}
	v, err := parse(bytes.NewReader(b))
	if err != nil {
		return zero, fmt.Errorf("snapshot: %s: %w", root+name, err)
	}
	return v, nil
}

func readInt(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	return v, err == nil
}

// merge joins buddyinfo and zoneinfo by node and zone name.
func merge(buddy []procfs.ZoneFree, zinfo []procfs.ZoneInfo) []Zone {
	zones := make([]Zone, 0, len(zinfo)+1)
	for _, zi := range zinfo {
		zones = append(zones, Zone{
			Node:           zi.Node,
			Name:           zi.Zone,
			Managed:        zi.Managed,
			Present:        zi.Present,
			Min:            zi.Min,
			Low:            zi.Low,
			High:           zi.High,
			HaveWatermarks: zi.HaveWatermarks,
			NrFree:         zi.Free,
			Protection:     zi.Protection,
			FreeCMA:        zi.FreeCMA,
			// 0 unless a vendor zoneinfo prints it; applyPagetypeinfo
			// fills it from the HighAtomic pageblocks otherwise.
			ReservedHighatomic: zi.ReservedHighatomic,
		})
	}
	for _, bi := range buddy {
		if z := find(zones, bi.Node, bi.Zone); z != nil {
			z.FreeBlocks = bi.Free
			continue
		}
		zones = append(zones, Zone{Node: bi.Node, Name: bi.Zone, FreeBlocks: bi.Free})
	}
	return zones
}

// find is a linear search: a machine has a handful of zones per node.
func find(zones []Zone, node int, name string) *Zone {
	for i := range zones {
		if zones[i].Node == node && zones[i].Name == name {
			return &zones[i]
		}
	}
	return nil
}

func applyPagetypeinfo(s *Snapshot, p *procfs.Pagetypeinfo) {
	if p.PageblockOrder > 0 {
		s.PageblockOrder = p.PageblockOrder
	}
	for _, f := range p.Free {
		z := find(s.Zones, f.Node, f.Zone)
		if z == nil {
			continue
		}
		if z.FreeByMigratetype == nil {
			z.FreeByMigratetype = make(map[string][]uint64)
		}
		z.FreeByMigratetype[f.Type] = f.Free
		z.FreeByMigratetypeCapped = z.FreeByMigratetypeCapped || f.Capped
	}
	for _, b := range p.Blocks {
		if z := find(s.Zones, b.Node, b.Zone); z != nil {
			z.PageblocksByMigratetype = b.Blocks
			// nr_reserved_highatomic grows by pageblock_nr_pages per block
			// reserve_highatomic_pageblock converts (mm/page_alloc.c 4.4
			// to 6.12; 6.12 adds 1 << order for a buddy larger than a
			// pageblock, which x86_64's MAX_PAGE_ORDER 10 > 9 allows but
			// no pagetypeinfo can tell apart).
			if n := b.Blocks["HighAtomic"]; n > 0 && z.ReservedHighatomic == 0 && s.PageblockOrder > 0 {
				z.ReservedHighatomic = n << s.PageblockOrder
			}
		}
	}
}
