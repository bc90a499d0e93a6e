package trace

import (
	"github.com/fragscope/fragscope/internal/event"
)

// mem_stalls records (kind 12) come once per interval with stalls in it:
// binary, histograms sparse. Field order is the format: append only.

func (e *encoder) memStalls(ev *event.MemStalls) {
	e.time(ev.Time)
	e.uvarint(uint64(len(ev.Stalls)))
	for i := range ev.Stalls {
		s := &ev.Stalls[i]
		e.uvarint(s.CgroupID)
		e.string(s.Kind)
		e.byte(s.Order)
		e.uvarint(s.Count)
		e.uvarint(s.TotalNs)
		e.uvarint(s.Reclaimed)
		e.uvarint(s.Retries)
		e.uvarint(s.GiveUps)
		e.results(s.Results)
		e.sparse(s.Buckets[:])
	}
	e.uvarint(uint64(len(ev.Zones)))
	for i := range ev.Zones {
		z := &ev.Zones[i]
		e.varint(int64(z.Node))
		e.string(z.Zone)
		e.uvarint(z.ZoneStart)
		e.byte(boolByte(z.Direct))
		e.uvarint(z.Count)
		e.uvarint(z.TotalNs)
		e.results(z.Results)
		e.sparse(z.Buckets[:])
	}
	e.sparse(ev.KcompactdWakes[:])
	e.uvarint(uint64(len(ev.PSI)))
	for _, p := range ev.PSI {
		e.uvarint(p.CgroupID)
		e.uvarint(p.SomeUs)
		e.uvarint(p.FullUs)
	}
	e.uvarint(ev.Overflow)
}

func (e *encoder) results(r []event.ResultCount) {
	e.uvarint(uint64(len(r)))
	for _, x := range r {
		e.string(x.Result)
		e.uvarint(x.Count)
	}
}

func (d *decoder) results() []event.ResultCount {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	var out []event.ResultCount
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, event.ResultCount{Result: d.str(), Count: d.uvarint()})
	}
	return out
}

// memStalls decodes into a fresh event: its slices are small and rare, and
// a consumer may keep them (the aggregator's interval histories do).
func (d *decoder) memStalls() *event.MemStalls {
	ev := &event.MemStalls{Time: d.time()}
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var s event.StallHist
		s.CgroupID = d.uvarint()
		s.Kind = d.str()
		s.Order = d.byte()
		s.Count = d.uvarint()
		s.TotalNs = d.uvarint()
		s.Reclaimed = d.uvarint()
		s.Retries = d.uvarint()
		s.GiveUps = d.uvarint()
		s.Results = d.results()
		d.sparse(s.Buckets[:])
		ev.Stalls = append(ev.Stalls, s)
	}
	n = d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var z event.ZoneCompaction
		z.Node = int(d.varint())
		z.Zone = d.str()
		z.ZoneStart = d.uvarint()
		z.Direct = d.byte() != 0
		z.Count = d.uvarint()
		z.TotalNs = d.uvarint()
		z.Results = d.results()
		d.sparse(z.Buckets[:])
		ev.Zones = append(ev.Zones, z)
	}
	d.sparse(ev.KcompactdWakes[:])
	n = d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		ev.PSI = append(ev.PSI, event.PSIDelta{CgroupID: d.uvarint(), SomeUs: d.uvarint(), FullUs: d.uvarint()})
	}
	ev.Overflow = d.uvarint()
	if d.err != nil {
		return nil
	}
	return ev
}
