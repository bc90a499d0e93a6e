// Package aggregate folds the event stream of one session into the counts
// the views render: allocations and failures per order, gfp class and
// migratetype; extfrag fallbacks by migratetype pair and cgroup; slab cache
// and netns creations; failed namespace syscalls; drops; the latest failure
// events of each kind; the latest free-memory snapshot; cgroup paths; and per
// cgroup (cgroups.go) the fragmenting fallbacks its tasks caused, their
// unmovable, reclaimable and high-order allocations and the failures they
// suffered, ranked by any of these (Top) with the container and pod the
// cgroup path names.
//
// One Aggregator serves a live session and a replay alike, so it is built to
// be deterministic: it never reads the clock (times come from the events),
// and every list it hands out is sorted, never in map order.
//
// Each event is counted once, into the open interval. A Tick closes it: the
// Tick's counter deltas are added, the interval is merged into the session
// totals and kept as the closed one that Interval returns until the next
// Tick, and a fresh interval opens. Add does no allocation for Ticks and
// failures once the maps have seen their keys; the summaries, which do
// allocate, are built only when a view asks for them.
package aggregate
