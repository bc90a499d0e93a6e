package trace

import (
	"context"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// pace sleeps until ev's offset from the first event has passed on the wall
// clock since replay began: --speed realtime.
func pace(ctx context.Context, ev event.Event, first, firstWall *int64) {
	t := ev.When().UnixNano()
	now := time.Now().UnixNano()
	if *first == 0 {
		*first, *firstWall = t, now
		return
	}
	wait := time.Duration((t - *first) - (now - *firstWall))
	if wait <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}
