package pipeline

import (
	"fmt"
	"io"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Progress prints one updating line on a terminal for long work: elapsed,
// events, bytes recorded, percent read, drops. It redraws at most every
// 500 ms. Use its Event as Options.OnEvent.
type Progress struct {
	W     io.Writer
	Start time.Time
	// Bytes, when set, is the bytes recorded so far.
	Bytes func() int64
	// Total and Read, when set, give a percentage (replay of a file).
	Total int64
	Read  func() int64

	last   time.Time
	events uint64
	drops  uint64
}

func (pr *Progress) Event(ev event.Event) {
	pr.events++
	if t, ok := ev.(*event.Tick); ok {
		pr.drops += t.Drops
	}
	if now := time.Now(); now.Sub(pr.last) >= 500*time.Millisecond {
		pr.last = now
		pr.draw(now)
	}
}

func (pr *Progress) draw(now time.Time) {
	line := fmt.Sprintf("%s  %d events", now.Sub(pr.Start).Truncate(time.Second), pr.events)
	if pr.Bytes != nil {
		line += fmt.Sprintf("  %d KiB", pr.Bytes()>>10)
	}
	if pr.Total > 0 && pr.Read != nil {
		line += fmt.Sprintf("  %3.0f%%", 100*float64(pr.Read())/float64(pr.Total))
	}
	line += fmt.Sprintf("  %d drops", pr.drops)
	fmt.Fprintf(pr.W, "\r\033[K%s", line)
}

// Done draws the final line and ends it.
func (pr *Progress) Done() {
	pr.draw(time.Now())
	fmt.Fprintln(pr.W)
}
