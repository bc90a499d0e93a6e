package kernlog

import (
	"context"
	"io"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kmsg"
)

// File is an event source reading one kernel log to its end: a file,
// stdin, or the running kernel's buffer read up to now.
type File struct {
	R       io.Reader
	Options Options
	Version string // fragscope's, for the Start
	// OnReports, when set, is called with the parsed reports before any
	// event is emitted (explain's per-report lines).
	OnReports func([]kmsg.Report)
	// GFPEra names the gfp table used and Bases how times were derived,
	// set by Run.
	GFPEra string
	Bases  []Basis
}

// Run parses the whole log (the Start needs the kernel release, which the
// first report names) and emits the Start and every report's events.
func (f *File) Run(ctx context.Context, emit func(event.Event)) error {
	reports, err := kmsg.Parse(f.R, kmsg.Options{Year: f.Options.Year})
	if err != nil {
		return err
	}
	if f.OnReports != nil {
		f.OnReports(reports)
	}
	st, era := Start(reports, f.Options.Source, f.Version)
	f.GFPEra = era
	if len(reports) > 0 {
		c := NewConverter(f.Options, func(event.Event) {})
		st.Time = c.when(reports[0])
		if st.Time.IsZero() {
			st.Time = Epoch
		}
	}
	emit(&st)
	c := NewConverter(f.Options, emit)
	c.last = st.Time
	for _, r := range reports {
		if ctx.Err() != nil {
			break
		}
		c.Add(r)
	}
	c.Flush()
	f.Bases = c.Bases()
	return nil
}
