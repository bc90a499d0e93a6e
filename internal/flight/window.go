package flight

import (
	"context"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Window cuts any recording to [since, until] (zero: unbounded) the way
// OpenDir cuts a data dir: the Start, then the state as of since, then the
// events inside. `replay FILE --since` uses it on a single trace file.
func Window(src event.Source, since, until time.Time) event.Source {
	return windowSource{src, since, until}
}

type windowSource struct {
	src          event.Source
	since, until time.Time
}

func (w windowSource) Run(ctx context.Context, emit func(event.Event)) error {
	j := joiner{since: w.since, until: w.until, emit: emit}
	err := w.src.Run(ctx, j.add)
	j.end()
	return err
}
