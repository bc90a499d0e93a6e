package trace

import (
	"slices"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/procfs"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Snapshots come every interval, so they are packed in binary: as JSON
// they were 90% of a quiet recording. snapshotFields and zoneFields are
// checked against the structs by a test, so a field added there cannot be
// dropped here silently.
const (
	snapshotFields = 7
	zoneFields     = 17
)

func (e *encoder) memSnapshot(ev *event.MemSnapshot) {
	s := ev.Snapshot
	e.time(s.Time)
	e.string(ev.Reason)
	e.uvarint(uint64(s.PageSize))
	e.varint(int64(s.PageblockOrder))
	if s.ExtfragThreshold != nil {
		e.byte(1)
		e.varint(int64(*s.ExtfragThreshold))
	} else {
		e.byte(0)
	}
	e.uvarint(uint64(len(s.Zones)))
	for i := range s.Zones {
		z := &s.Zones[i]
		e.varint(int64(z.Node))
		e.string(z.Name)
		e.counts(z.FreeBlocks)
		e.uvarint(z.Managed)
		e.uvarint(z.Min)
		e.uvarint(z.Low)
		e.uvarint(z.High)
		e.byte(boolByte(z.HaveWatermarks))
		e.uvarint(z.NrFree)
		e.uvarint(z.Present)
		e.byte(boolByte(z.FreeByMigratetypeCapped))
		// Maps in key order: the same snapshot always encodes the same.
		if z.FreeByMigratetype == nil {
			e.byte(0)
		} else {
			e.byte(1)
			keys := sortedKeys(z.FreeByMigratetype)
			e.uvarint(uint64(len(keys)))
			for _, k := range keys {
				e.string(k)
				e.counts(z.FreeByMigratetype[k])
			}
		}
		if z.PageblocksByMigratetype == nil {
			e.byte(0)
		} else {
			e.byte(1)
			keys := sortedKeys(z.PageblocksByMigratetype)
			e.uvarint(uint64(len(keys)))
			for _, k := range keys {
				e.string(k)
				e.uvarint(z.PageblocksByMigratetype[k])
			}
		}
	}
	// Appended after the zones (format version 2 as it was): a payload that
	// ends here is an older recording, or one whose zones have none of
	// these fields, which then stay empty. Left out when all are empty, so
	// such snapshots cost no byte more than before.
	compaction := s.Compaction != nil || s.CompactionProactiveness != nil
	if !hasZoneExtras(s.Zones) && !compaction {
		return
	}
	e.uvarint(uint64(len(s.Zones)))
	for i := range s.Zones {
		z := &s.Zones[i]
		if z.Protection == nil {
			e.byte(0)
		} else {
			e.byte(1)
			e.counts(z.Protection)
		}
		e.uvarint(z.FreeCMA)
		e.uvarint(z.ReservedHighatomic)
		e.uvarint(uint64(len(z.FreeTypeLetters)))
		for _, l := range z.FreeTypeLetters {
			e.string(l)
		}
	}
	// Appended after the zone extras (issue 13), only when known.
	if !compaction {
		return
	}
	if c := s.Compaction; c != nil {
		e.byte(1)
		e.uvarint(c.CompactStall)
		e.uvarint(c.CompactFail)
		e.uvarint(c.CompactSuccess)
		e.uvarint(c.THPFaultFallback)
		e.uvarint(c.THPFaultFallbackCharge)
	} else {
		e.byte(0)
	}
	if p := s.CompactionProactiveness; p != nil {
		e.byte(1)
		e.varint(int64(*p))
	} else {
		e.byte(0)
	}
}

func hasZoneExtras(zones []snapshot.Zone) bool {
	for i := range zones {
		z := &zones[i]
		if z.Protection != nil || z.FreeCMA != 0 || z.ReservedHighatomic != 0 || len(z.FreeTypeLetters) > 0 {
			return true
		}
	}
	return false
}

func (e *encoder) counts(a []uint64) {
	e.uvarint(uint64(len(a)))
	for _, v := range a {
		e.uvarint(v)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// memSnapshot decodes into a fresh snapshot: consumers keep snapshots.
func (d *decoder) memSnapshot() *event.MemSnapshot {
	s := &snapshot.Snapshot{}
	s.Time = d.time()
	ev := &event.MemSnapshot{Snapshot: s}
	ev.Reason = d.str()
	s.PageSize = uint32(d.uvarint())
	s.PageblockOrder = int(d.varint())
	if d.byte() == 1 {
		t := int(d.varint())
		s.ExtfragThreshold = &t
	}
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	s.Zones = make([]snapshot.Zone, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var z snapshot.Zone
		z.Node = int(d.varint())
		z.Name = d.str()
		z.FreeBlocks = d.counts()
		z.Managed = d.uvarint()
		z.Min = d.uvarint()
		z.Low = d.uvarint()
		z.High = d.uvarint()
		z.HaveWatermarks = d.byte() != 0
		z.NrFree = d.uvarint()
		z.Present = d.uvarint()
		z.FreeByMigratetypeCapped = d.byte() != 0
		if d.byte() == 1 {
			m := d.uvarint()
			if m > uint64(len(d.buf)) {
				d.err = errCorrupt
				return nil
			}
			z.FreeByMigratetype = make(map[string][]uint64, m)
			for j := uint64(0); j < m && d.err == nil; j++ {
				k := d.str()
				z.FreeByMigratetype[k] = d.counts()
			}
		}
		if d.byte() == 1 {
			m := d.uvarint()
			if m > uint64(len(d.buf)) {
				d.err = errCorrupt
				return nil
			}
			z.PageblocksByMigratetype = make(map[string]uint64, m)
			for j := uint64(0); j < m && d.err == nil; j++ {
				k := d.str()
				z.PageblocksByMigratetype[k] = d.uvarint()
			}
		}
		s.Zones = append(s.Zones, z)
	}
	if d.err == nil && len(d.buf) > 0 {
		d.zoneExtras(s.Zones)
	}
	if d.err == nil && len(d.buf) > 0 {
		if d.byte() == 1 {
			s.Compaction = &procfs.CompactionStat{CompactStall: d.uvarint(), CompactFail: d.uvarint(),
				CompactSuccess: d.uvarint(), THPFaultFallback: d.uvarint(), THPFaultFallbackCharge: d.uvarint()}
		}
		if d.byte() == 1 {
			p := int(d.varint())
			s.CompactionProactiveness = &p
		}
	}
	if d.err != nil {
		return nil
	}
	return ev
}

// zoneExtras decodes the per-zone fields appended after the zones:
// Protection, FreeCMA, ReservedHighatomic, FreeTypeLetters.
func (d *decoder) zoneExtras(zones []snapshot.Zone) {
	n := d.uvarint()
	if d.err == nil && n != uint64(len(zones)) {
		d.err = errCorrupt
		return
	}
	for i := range zones {
		if d.err != nil {
			return
		}
		z := &zones[i]
		if d.byte() == 1 {
			z.Protection = d.counts()
		}
		z.FreeCMA = d.uvarint()
		z.ReservedHighatomic = d.uvarint()
		m := d.uvarint()
		if m > uint64(len(d.buf)) {
			d.err = errCorrupt
			return
		}
		if m > 0 {
			z.FreeTypeLetters = make([]string, m)
			for j := range z.FreeTypeLetters {
				z.FreeTypeLetters[j] = d.str()
			}
		}
	}
}

func (d *decoder) counts() []uint64 {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	a := make([]uint64, n)
	for i := range a {
		a[i] = d.uvarint()
	}
	return a
}
