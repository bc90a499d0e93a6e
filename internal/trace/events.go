package trace

import (
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// The binary payloads of the frequent kinds. Field order is the format:
// append new fields at the end only, and bump Version if a field changes.

func (e *encoder) allocFail(ev *event.AllocFail, stackRef uint64) {
	e.time(ev.Time)
	e.task(&ev.Task)
	e.byte(ev.Order)
	e.uvarint(ev.GFP)
	e.byte(byte(ev.Migratetype))
	e.string(ev.Hook)
	e.uvarint(stackRef)
	e.ref(ev.In, ev.Time)
	if ev.Duplicate {
		// Appended with kernel_report, written only when set: every other
		// payload stays byte for byte what it was.
		e.byte(1)
	}
}

func (d *decoder) allocFail(ev *event.AllocFail) (stackRef uint64) {
	ev.Time = d.time()
	d.task(&ev.Task)
	ev.Order = d.byte()
	ev.GFP = d.uvarint()
	ev.Migratetype = int8(d.byte())
	ev.Hook = d.str()
	stackRef = d.uvarint()
	ev.In = d.ref(ev.Time)
	ev.Duplicate = false
	if len(d.buf) > 0 && d.err == nil {
		ev.Duplicate = d.byte() != 0
	}
	return stackRef
}

func (e *encoder) slabCreate(ev *event.SlabCreate) {
	e.time(ev.Time)
	e.task(&ev.Task)
	e.string(ev.Name)
	e.uvarint(uint64(ev.Size))
	e.uvarint(ev.Flags)
	e.byte(boolByte(ev.Failed))
	e.uvarint(uint64(ev.Latency))
	e.ref(ev.In, ev.Time)
}

func (d *decoder) slabCreate(ev *event.SlabCreate) {
	ev.Time = d.time()
	d.task(&ev.Task)
	ev.Name = d.str()
	ev.Size = uint32(d.uvarint())
	ev.Flags = d.uvarint()
	ev.Failed = d.byte() != 0
	ev.Latency = time.Duration(d.uvarint())
	ev.In = d.ref(ev.Time)
}

func (e *encoder) netnsCreate(ev *event.NetnsCreate) {
	e.time(ev.Time)
	e.task(&ev.Task)
	e.varint(int64(ev.Errno))
	e.uvarint(uint64(ev.Inode))
	e.uvarint(uint64(ev.Latency))
	e.ref(ev.In, ev.Time)
}

func (d *decoder) netnsCreate(ev *event.NetnsCreate) {
	ev.Time = d.time()
	d.task(&ev.Task)
	ev.Errno = int32(d.varint())
	ev.Inode = uint32(d.uvarint())
	ev.Latency = time.Duration(d.uvarint())
	ev.In = d.ref(ev.Time)
}

func (e *encoder) nsSyscall(ev *event.NsSyscall) {
	e.time(ev.Time)
	e.task(&ev.Task)
	e.string(ev.Syscall)
	e.uvarint(ev.Flags)
	e.varint(int64(ev.Errno))
	e.varint(ev.Time.UnixNano() - ev.Enter.UnixNano())
	e.uvarint(uint64(ev.Latency))
	if g := ev.Sandbox; g != nil {
		// Appended with the sandbox attribution, written only when set.
		e.byte(1)
		e.string(g.PodUID)
		e.string(g.PodName)
		e.string(g.PodNamespace)
		e.string(g.SandboxID)
		e.uvarint(uint64(g.Candidates))
		e.string(g.Why)
	}
	if r := ev.Runc; r != nil {
		// Appended after the sandbox block with the runc attribution
		// (marker 2), written only when set.
		e.byte(2)
		e.string(r.ID)
		e.string(r.StateRoot)
	}
}

func (d *decoder) nsSyscall(ev *event.NsSyscall) {
	ev.Time = d.time()
	d.task(&ev.Task)
	ev.Syscall = d.str()
	ev.Flags = d.uvarint()
	ev.Errno = int32(d.varint())
	ev.Enter = ev.Time.Add(-time.Duration(d.varint()))
	ev.Latency = time.Duration(d.uvarint())
	ev.Sandbox, ev.Runc = nil, nil
	for len(d.buf) > 0 && d.err == nil {
		switch d.byte() {
		case 1:
			ev.Sandbox = &event.SandboxGuess{PodUID: d.str(), PodName: d.str(), PodNamespace: d.str(),
				SandboxID: d.str(), Candidates: int(d.uvarint()), Why: d.str()}
		case 2:
			ev.Runc = &event.RuncTask{ID: d.str(), StateRoot: d.str()}
		default:
			return // a block a later version appended
		}
	}
}

// tick stores only the non-zero allocation cells: most orders and
// migratetypes see nothing in an interval.
func (e *encoder) tick(ev *event.Tick) {
	e.time(ev.Time)
	e.uvarint(uint64(ev.Interval))
	n := 0
	for o := range ev.Allocs {
		for m := range ev.Allocs[o] {
			if ev.Allocs[o][m] != 0 {
				n++
			}
		}
	}
	e.uvarint(uint64(n))
	for o := range ev.Allocs {
		for m, c := range ev.Allocs[o] {
			if c != 0 {
				e.byte(byte(o*event.Migratetypes + m))
				e.uvarint(c)
			}
		}
	}
	e.uvarint(uint64(len(ev.Extfrag)))
	for _, x := range ev.Extfrag {
		e.uvarint(x.CgroupID)
		e.byte(x.AllocOrder)
		e.byte(x.FallbackOrder)
		e.byte(x.AllocMT)
		e.byte(x.FallbackMT)
		e.byte(boolByte(x.Fragmenting))
		e.uvarint(x.Count)
	}
	e.uvarint(ev.Drops)
	e.uvarint(ev.Overflow)
	// Per-cgroup counters (appended in format version 1 before its first
	// release; a tick without them ends here).
	e.uvarint(uint64(len(ev.Cgroups)))
	for i := range ev.Cgroups {
		c := &ev.Cgroups[i]
		e.uvarint(c.CgroupID)
		e.sparse(c.Unmovable[:])
		e.sparse(c.Reclaimable[:])
		e.uvarint(c.HighOrder)
		e.uvarint(c.Failures)
	}
	e.uvarint(ev.CgroupOverflow)
}

// sparse writes the non-zero entries of a per-order array.
func (e *encoder) sparse(a []uint64) {
	n := 0
	for _, v := range a {
		if v != 0 {
			n++
		}
	}
	e.uvarint(uint64(n))
	for i, v := range a {
		if v != 0 {
			e.byte(byte(i))
			e.uvarint(v)
		}
	}
}

func (d *decoder) sparse(a []uint64) {
	clear(a)
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		idx := int(d.byte())
		v := d.uvarint()
		if idx >= len(a) {
			d.err = errCorrupt
			return
		}
		a[idx] = v
	}
}

func (d *decoder) tick(ev *event.Tick) {
	ev.Time = d.time()
	ev.Interval = time.Duration(d.uvarint())
	ev.Allocs = [event.Orders][event.Migratetypes]uint64{}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		idx := int(d.byte())
		c := d.uvarint()
		if idx >= event.Orders*event.Migratetypes {
			d.err = errCorrupt
			return
		}
		ev.Allocs[idx/event.Migratetypes][idx%event.Migratetypes] = c
	}
	n = d.uvarint()
	if n > uint64(len(d.buf)) { // each entry takes at least 7 bytes
		d.err = errCorrupt
		return
	}
	ev.Extfrag = ev.Extfrag[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		var x event.ExtfragCount
		x.CgroupID = d.uvarint()
		x.AllocOrder = d.byte()
		x.FallbackOrder = d.byte()
		x.AllocMT = d.byte()
		x.FallbackMT = d.byte()
		x.Fragmenting = d.byte() != 0
		x.Count = d.uvarint()
		ev.Extfrag = append(ev.Extfrag, x)
	}
	ev.Drops = d.uvarint()
	ev.Overflow = d.uvarint()
	ev.Cgroups = ev.Cgroups[:0]
	ev.CgroupOverflow = 0
	if len(d.buf) == 0 || d.err != nil {
		return
	}
	n = d.uvarint()
	if n > uint64(len(d.buf)) { // each entry takes at least 5 bytes
		d.err = errCorrupt
		return
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var c event.CgroupAlloc
		c.CgroupID = d.uvarint()
		d.sparse(c.Unmovable[:])
		d.sparse(c.Reclaimable[:])
		c.HighOrder = d.uvarint()
		c.Failures = d.uvarint()
		ev.Cgroups = append(ev.Cgroups, c)
	}
	ev.CgroupOverflow = d.uvarint()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
