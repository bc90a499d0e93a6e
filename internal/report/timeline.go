package report

import (
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Cells bound the columns of every chart over time: a recording of ten
// seconds keeps 100 ms columns, a 24 h data dir about 100 s ones. The width
// starts at firstWidth and doubles, merging neighbours, whenever the span
// outgrows maxCells: one pass over the stream, memory bounded by maxCells
// whatever the recording's length.
const (
	firstWidth = 100 * time.Millisecond
	maxCells   = 1024
)

// cell is what happened in one column of time. Merging two cells keeps
// every failure and the worst free-memory picture: the fewest free blocks
// and the highest fragmentation index seen in either.
type cell struct {
	zones []zoneCell // by Report.zones index

	covered              time.Duration // counter time the ticks here cover
	allocs               [event.Orders]uint64
	extfrag, fragmenting uint64
	drops, lost          uint64 // ringbuf drops; extfrag and cgroup map overflows

	fails     [event.Orders]uint64 // failed page allocations by order
	incidents int
	nsFails   uint64          // failed namespace syscalls and forks
	stalls    []time.Duration // longest of each stall kind (index = stallKinds)
}

// zoneCell is one zone's lowest free-block counts and highest
// fragmentation indices (thousandths) in a cell.
type zoneCell struct {
	have bool
	free [event.Orders]uint64
	frag [event.Orders]int16
}

func (c *cell) merge(o *cell) {
	for len(c.zones) < len(o.zones) {
		c.zones = append(c.zones, zoneCell{})
	}
	for i := range o.zones {
		c.zones[i].merge(&o.zones[i])
	}
	c.covered += o.covered
	for i := range c.allocs {
		c.allocs[i] += o.allocs[i]
		c.fails[i] += o.fails[i]
	}
	c.extfrag += o.extfrag
	c.fragmenting += o.fragmenting
	c.drops += o.drops
	c.lost += o.lost
	c.incidents += o.incidents
	c.nsFails += o.nsFails
	for len(c.stalls) < len(o.stalls) {
		c.stalls = append(c.stalls, 0)
	}
	for i, d := range o.stalls {
		c.stalls[i] = max(c.stalls[i], d)
	}
}

func (z *zoneCell) merge(o *zoneCell) {
	if !o.have {
		return
	}
	if !z.have {
		*z = *o
		return
	}
	for i := range z.free {
		z.free[i] = min(z.free[i], o.free[i])
		z.frag[i] = max(z.frag[i], o.frag[i])
	}
}

// timeline is the stream's cells: cell i covers [origin+i*width,
// origin+(i+1)*width). origin is a multiple of width, so doubling the
// width merges whole pairs.
type timeline struct {
	origin time.Time
	width  time.Duration
	cells  []cell
}

// at returns the cell of t, growing or coarsening the timeline. The
// pointer is valid until the next call. Events before the first one seen
// (a late kernel report) land in the first cell.
func (tl *timeline) at(t time.Time) *cell {
	if tl.width == 0 {
		tl.width = firstWidth
		tl.origin = t.Truncate(tl.width)
	}
	if t.Before(tl.origin) {
		t = tl.origin
	}
	i := int(t.Sub(tl.origin) / tl.width)
	for i >= maxCells {
		tl.coarsen()
		i = int(t.Sub(tl.origin) / tl.width)
	}
	for len(tl.cells) <= i {
		tl.cells = append(tl.cells, cell{})
	}
	return &tl.cells[i]
}

// coarsen doubles the width: old cell i goes to (i+off)/2, off being 1
// when the new origin (a multiple of the new width) is one old width
// earlier.
func (tl *timeline) coarsen() {
	w := tl.width * 2
	origin := tl.origin.Truncate(w)
	off := int(tl.origin.Sub(origin) / tl.width)
	out := make([]cell, (len(tl.cells)+off+1)/2)
	for i := range tl.cells {
		out[(i+off)/2].merge(&tl.cells[i])
	}
	tl.origin, tl.width, tl.cells = origin, w, out
}

// start and mid are a cell's left edge and centre.
func (tl *timeline) start(i int) time.Time { return tl.origin.Add(time.Duration(i) * tl.width) }
func (tl *timeline) mid(i int) time.Time   { return tl.start(i).Add(tl.width / 2) }
