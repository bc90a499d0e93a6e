package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kernlog"
	"github.com/fragscope/fragscope/internal/kmsg"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/view"
)

func explainCommand() *cli.Command {
	return &cli.Command{
		Name: "explain",
		Usage: "explain the allocation failures in kernel logs (dmesg, syslog, journalctl, a pasted excerpt): " +
			"the same incidents and verdicts as `incidents`, on any kernel",
		ArgsUsage: "[FILE ...]  ('-' is stdin; none: the running kernel's buffer, /dev/kmsg, as root)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON incident object per line, as `incidents --json` (docs/json.md)"},
			&cli.StringFlag{Name: "record", Usage: "also write the events as a trace FILE that `replay` and `incidents` read"},
			&cli.IntFlag{Name: "year", Usage: "the year of syslog and journalctl dates, which print none (default: " +
				fmt.Sprint(kernlog.Epoch.Year()) + ", said in the output)"},
		},
		Action: runExplain,
	}
}

// explainInput is one log to read.
type explainInput struct {
	name  string
	r     io.Reader
	size  int64 // 0 when unknown
	close func()
}

func runExplain(c *cli.Context) (err error) {
	inputs, err := explainInputs(c.Args().Slice())
	if err != nil {
		return err
	}
	defer func() {
		for _, in := range inputs {
			in.close()
		}
	}()
	var rec *trace.Writer
	if p := c.String("record"); p != "" {
		if rec, err = trace.Create(p); err != nil {
			return err
		}
		defer func() {
			if cerr := rec.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	jsonOut := c.Bool("json")
	text := &view.IncidentReports{W: out}
	v := view.IncidentsOnly(text)
	if jsonOut {
		v = view.IncidentsOnly(view.NewJSON(out))
	}
	opt := pipeline.Options{View: v}
	if rec != nil {
		opt.Tap = rec
	}
	var total int64
	for _, in := range inputs {
		total += in.size
	}
	var read countingReader
	var prog *pipeline.Progress
	if isTerminal(os.Stderr) && total > 8<<20 {
		prog = &pipeline.Progress{W: os.Stderr, Start: time.Now(), Total: total, Read: read.Count}
		opt.OnEvent = prog.Event
	}
	src := &explainSource{inputs: inputs, year: c.Int("year"), read: &read, text: !jsonOut, w: out, reports: text}
	err = pipeline.New(opt).Run(c.Context, src)
	if prog != nil {
		prog.Done()
	}
	return err
}

// explainInputs opens the named logs: "-" is stdin, none is the running
// kernel's buffer.
func explainInputs(args []string) ([]explainInput, error) {
	if len(args) == 0 {
		r, err := openKernelBuffer()
		if err != nil {
			return nil, err
		}
		return []explainInput{{name: "/dev/kmsg", r: r, close: func() { r.Close() }}}, nil
	}
	var out []explainInput
	stdin := false
	for _, a := range args {
		if a == "-" {
			if stdin {
				return nil, fmt.Errorf("'-' (stdin) is named twice: name it once")
			}
			stdin = true
			out = append(out, explainInput{name: "-", r: os.Stdin, close: func() {}})
			continue
		}
		f, err := os.Open(a)
		if err != nil {
			for _, in := range out {
				in.close()
			}
			return nil, fmt.Errorf("explain: %w", err)
		}
		in := explainInput{name: a, r: f, close: func() { f.Close() }}
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			in.size = st.Size()
		}
		out = append(out, in)
	}
	return out, nil
}

// explainSource runs every input as one stream: each log's Start, then its
// reports' events. One pipeline over all of them is what a --record of it
// replays, so `incidents` on the recording prints the same.
type explainSource struct {
	inputs  []explainInput
	year    int
	read    *countingReader
	text    bool
	w       *bufio.Writer
	reports *view.IncidentReports
}

func (s *explainSource) Run(ctx context.Context, emit func(event.Event)) error {
	for _, in := range s.inputs {
		s.read.r = in.r
		f := &kernlog.File{R: s.read, Options: kernlog.Options{Source: in.name, Year: s.year}, Version: version}
		var reports []kmsg.Report
		f.OnReports = func(rs []kmsg.Report) { reports = rs }
		before := s.reports.Count
		var header bool
		err := f.Run(ctx, func(ev event.Event) {
			if st, ok := ev.(*event.Start); ok && s.text {
				s.fileHeader(in.name, st, f, reports)
				header = true
			}
			emit(ev)
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", in.name, err)
		}
		if s.text && header && s.reports.Count == before {
			fmt.Fprintln(s.w, "no incidents: no allocation-failure report was found in it")
		}
		if s.text {
			s.reports.Count = 0 // each file's incidents start after its own header
		}
	}
	return nil
}

// fileHeader says what was read from a log before its incidents: the
// number of reports, which could not be fully read, the gfp table and how
// times were derived.
func (s *explainSource) fileHeader(name string, st *event.Start, f *kernlog.File, reports []kmsg.Report) {
	w := s.w
	fmt.Fprintln(w, strings.Repeat("=", 100))
	unreadable := 0
	for _, r := range reports {
		if len(r.Unreadable) > 0 {
			unreadable++
		}
	}
	fmt.Fprintf(w, "%s: %d kernel reports", name, len(reports))
	if unreadable > 0 {
		fmt.Fprintf(w, ", %d with parts that could not be read (listed under each incident)", unreadable)
	}
	fmt.Fprintln(w)
	if st.KernelRelease != "" {
		fmt.Fprintf(w, "kernel %s; gfp flags decoded with %s\n", st.KernelRelease, f.GFPEra)
	} else {
		fmt.Fprintf(w, "kernel not named in the log; gfp flags decoded with %s\n", f.GFPEra)
	}
	if note := timeNote(reports, s.year); note != "" {
		fmt.Fprintln(w, note)
	}
	fmt.Fprintln(w, strings.Repeat("=", 100))
}

// timeNote says how the times shown were derived, when they are not the
// log's own full dates.
func timeNote(reports []kmsg.Report, year int) string {
	var wall, noYear, uptime, none bool
	for _, r := range reports {
		switch {
		case !r.Time.Wall.IsZero():
			wall = true
			noYear = noYear || r.Time.Wall.Year() == 0
		case r.Time.HaveUptime:
			uptime = true
		default:
			none = true
		}
	}
	var notes []string
	if noYear && year == 0 {
		notes = append(notes, fmt.Sprintf("the log's dates have no year: shown in %d (--year sets it)", kernlog.Epoch.Year()))
	}
	if uptime {
		notes = append(notes, "times without a date are printk's seconds since boot, shown after "+
			kernlog.Epoch.Format("2006-01-02 15:04:05 MST")+" (the log does not say when the machine booted)")
	}
	if none && (wall || uptime) {
		notes = append(notes, "reports without a timestamp take the time of the report before")
	} else if none {
		notes = append(notes, "the log has no timestamps: times shown are "+kernlog.Epoch.Format("2006-01-02 15:04:05 MST"))
	}
	if len(notes) == 0 {
		return ""
	}
	return "times: " + strings.Join(notes, "; ")
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Count() int64 { return c.n }
