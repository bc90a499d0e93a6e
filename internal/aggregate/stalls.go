package aggregate

import (
	"cmp"
	"slices"

	"github.com/fragscope/fragscope/internal/event"
)

// stallKey names one stall across its running report and its end: the
// end carries the running report's Enter.
type stallKey struct {
	tid   uint32
	call  string
	enter int64
}

// stalls counts the session's stalls and keeps the ones still running.
type stalls struct {
	byCall  map[string]uint64
	running map[stallKey]event.Stall
}

func (s *stalls) add(e *event.Stall) {
	if s.byCall == nil {
		s.byCall, s.running = map[string]uint64{}, map[stallKey]event.Stall{}
	}
	key := stallKey{e.Task.TID, e.Call, e.Enter.UnixNano()}
	_, wasRunning := s.running[key]
	switch {
	case e.Running():
		if !wasRunning {
			s.byCall[e.Call]++
		}
		s.running[key] = *e
	default:
		// Counted at its running report, or here when it ended between
		// two scans and had none.
		if !wasRunning {
			s.byCall[e.Call]++
		}
		delete(s.running, key)
	}
}

// StallCount is the stalls of one call in the session.
type StallCount struct {
	Call  string
	Count uint64
}

// Stalls returns the session's stalls by call (sorted by call) and the
// stalls reported running and not ended yet (oldest first).
func (a *Aggregator) Stalls() ([]StallCount, []event.Stall) {
	var counts []StallCount
	for c, n := range a.stalls.byCall {
		counts = append(counts, StallCount{c, n})
	}
	slices.SortFunc(counts, func(x, y StallCount) int { return cmp.Compare(x.Call, y.Call) })
	var run []event.Stall
	for _, s := range a.stalls.running {
		run = append(run, s)
	}
	slices.SortFunc(run, func(x, y event.Stall) int {
		return cmp.Or(x.Enter.Compare(y.Enter), cmp.Compare(x.Task.TID, y.Task.TID), cmp.Compare(x.Call, y.Call))
	})
	return counts, run
}
