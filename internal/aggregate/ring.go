package aggregate

// RecentLen is how many failure events of each kind the aggregator keeps.
const RecentLen = 8

// ring keeps the latest RecentLen values written to it. Slots are reused in
// place, so a writer can also reuse the slot's own slices (stacks) and keep
// Add free of allocation once the ring has gone round once.
type ring[T any] struct {
	buf     [RecentLen]T
	written uint64
}

// next returns the slot to overwrite with the newest value.
func (r *ring[T]) next() *T {
	p := &r.buf[r.written%RecentLen]
	r.written++
	return p
}

// newest returns copies of the values, newest first; clone must deep-copy
// whatever the slot will reuse, since the caller keeps the result.
func (r *ring[T]) newest(clone func(T) T) []T {
	n := r.written
	if n > RecentLen {
		n = RecentLen
	}
	out := make([]T, 0, n)
	for i := uint64(1); i <= n; i++ {
		out = append(out, clone(r.buf[(r.written-i)%RecentLen]))
	}
	return out
}
