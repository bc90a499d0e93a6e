package memcg

import (
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// ChargeBatchPages is the most a charge attempt asks of a counter beyond
// the pages it needs (MEMCG_CHARGE_BATCH, include/linux/memcontrol.h: 32
// until 6.0, 64 since 6.1's "mm: memcg: increase MEMCG_CHARGE_BATCH to
// 64"). A cgroup with less headroom than this refused or nearly refused a
// charge; the larger value covers both eras.
const ChargeBatchPages = 64

// Finding names the memory cgroup whose limit refused a charge and what
// showed it. Nil from Judge: no level was at its limit.
type Finding struct {
	Version int       `json:"version"`
	From    string    `json:"from"` // how the task's cgroup was found (MemcgState.From)
	Path    string    `json:"path"`
	Limit   int64     `json:"limit_bytes"`
	Usage   uint64    `json:"usage_bytes"`
	Counter string    `json:"counter"` // "memory.failcnt", "memory.kmem.failcnt", "memory.events max"
	Count   uint64    `json:"count"`
	Delta   uint64    `json:"delta,omitempty"` // the counter's rise since Since
	Since   time.Time `json:"since,omitzero"`  // the reading before; zero: none
	AtLimit bool      `json:"at_limit"`        // usage within ChargeBatchPages of Limit
	// Levels is the whole chain read, innermost first, for the views.
	Levels []event.MemcgLevel `json:"levels"`
}

// Before returns the latest reading of the cgroup at path taken before
// the current one, if any.
type Before func(path string) (event.MemcgLevel, time.Time, bool)

// Judge decides whether st shows a memory cgroup limit refusing charges:
// first a level whose refusal counter rose since the reading before (the
// innermost one: v2 events propagate to ancestors, v1 failcnt counts at
// the refusing counter only), else a level at its limit (less headroom
// than a charge batch) whose counter is non-zero. pageSize is the
// session's page size.
func Judge(st *event.MemcgState, before Before, pageSize int) *Finding {
	if st == nil || len(st.Levels) == 0 {
		return nil
	}
	if pageSize <= 0 {
		pageSize = 4096
	}
	margin := uint64(ChargeBatchPages * pageSize)
	mk := func(l event.MemcgLevel, counter string, count uint64, limit int64, usage uint64) *Finding {
		return &Finding{Version: st.Version, From: st.From, Path: l.Path, Limit: limit, Usage: usage,
			Counter: counter, Count: count, AtLimit: limit >= 0 && usage+margin >= uint64(limit), Levels: st.Levels}
	}
	type counter struct {
		name   string
		get    func(l event.MemcgLevel) uint64
		limit  func(l event.MemcgLevel) (int64, uint64)
		active func(l event.MemcgLevel) bool
	}
	always := func(event.MemcgLevel) bool { return true }
	mem := func(l event.MemcgLevel) (int64, uint64) { return l.Limit, l.Usage }
	counters := []counter{{"memory.events max", func(l event.MemcgLevel) uint64 { return l.EventsMax }, mem, always}}
	if st.Version == 1 {
		counters = []counter{
			{"memory.failcnt", func(l event.MemcgLevel) uint64 { return l.Failcnt }, mem, always},
			{"memory.kmem.failcnt", func(l event.MemcgLevel) uint64 { return l.KmemFailcnt },
				func(l event.MemcgLevel) (int64, uint64) { return l.KmemLimit, l.KmemUsage },
				func(l event.MemcgLevel) bool { return l.HaveKmem }},
		}
	}
	if before != nil {
		for _, l := range st.Levels {
			prev, at, ok := before(l.Path)
			if !ok {
				continue
			}
			for _, c := range counters {
				if c.active(l) && c.get(l) > c.get(prev) {
					lim, use := c.limit(l)
					f := mk(l, c.name, c.get(l), lim, use)
					f.Delta, f.Since = c.get(l)-c.get(prev), at
					return f
				}
			}
		}
	}
	for _, l := range st.Levels {
		for _, c := range counters {
			lim, use := c.limit(l)
			if c.active(l) && lim >= 0 && use+margin >= uint64(lim) && c.get(l) > 0 {
				return mk(l, c.name, c.get(l), lim, use)
			}
		}
	}
	return nil
}
