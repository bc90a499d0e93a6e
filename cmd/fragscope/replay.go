package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/view"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "replay a recording into the same views and verdicts as watch",
		ArgsUsage: "FILE|DATA_DIR",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "the NDJSON stream watch --json gives"},
			&cli.BoolFlag{Name: "summary", Usage: "only the final summary"},
			&cli.StringFlag{Name: "speed", Value: "max", Usage: "'max' (as fast as possible) or 'realtime' (recorded pace)"},
			&cli.BoolFlag{Name: "top", Usage: "the cgroup rankings `fragscope top` gives (with --sort, --limit)"},
		}, append(topFlags(), windowFlags()...)...),
		Action: func(c *cli.Context) error {
			speed := c.String("speed")
			if speed != "max" && speed != "realtime" {
				return fmt.Errorf("--speed %q: use 'max' or 'realtime'", speed)
			}
			if !c.Bool("top") && (c.IsSet("sort") || c.IsSet("limit")) {
				return fmt.Errorf("--sort and --limit rank cgroups: use them with --top")
			}
			out := bufio.NewWriterSize(os.Stdout, 256<<10)
			defer out.Flush()
			var v view.View
			switch {
			case c.Bool("top"):
				top, err := newTopView(c, out, false)
				if err != nil {
					return err
				}
				v = top
				if c.Bool("summary") {
					v = view.SummaryOnly(top)
				}
			case c.Bool("summary") && c.Bool("json"):
				v = view.SummaryOnly(view.NewJSON(out))
			case c.Bool("summary"):
				v = view.SummaryOnly(view.NewTerminal(out, true))
			case c.Bool("json"):
				v = view.NewJSON(out)
			default:
				v = view.NewTerminal(out, false)
			}
			return replayInto(c, v, speed == "realtime")
		},
	}
}

// windowFlags cut a recording to a time window; with a data dir only the
// segments that overlap it are read.
func windowFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "since", Usage: "only events at or after this time: RFC 3339 (2026-12-02T10:00:00Z) or a duration before now (30m)"},
		&cli.StringFlag{Name: "until", Usage: "only events at or before this time: RFC 3339 or a duration before now"},
	}
}

// parseWhen reads a --since/--until value: RFC 3339, or a duration that
// far before now (as journalctl --since reads "-30m").
func parseWhen(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(v, "-")); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: use an RFC 3339 time (2026-12-02T10:00:00Z) or a duration before now (30m)", flag, v)
}

// recording is what a command reads: a trace file or a data dir, cut to
// --since/--until.
type recording struct {
	src      event.Source
	size     int64        // bytes to read, for progress
	read     func() int64 // bytes read so far
	close    func()
	warnings func() // prints what was damaged, after the run
}

func openRecording(c *cli.Context) (*recording, error) {
	if c.NArg() != 1 {
		return nil, fmt.Errorf("%s needs exactly one trace FILE or agent data DIR (made by `fragscope record -o FILE` or `fragscope agent --data-dir DIR`)", c.Command.Name)
	}
	path := c.Args().First()
	since, err := parseWhen("since", c.String("since"))
	if err != nil {
		return nil, err
	}
	until, err := parseWhen("until", c.String("until"))
	if err != nil {
		return nil, err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return nil, fmt.Errorf("--until is before --since: nothing to read")
	}
	if flight.IsDataDir(path) {
		d, err := flight.OpenDir(path, since, until)
		if err != nil {
			return nil, err
		}
		_, total := d.Progress()
		return &recording{src: d, size: total, read: func() int64 { r, _ := d.Progress(); return r },
			close: func() {},
			warnings: func() {
				for _, w := range d.Warnings() {
					fmt.Fprintf(os.Stderr, "fragscope: warning: %s\n", w)
				}
			}}, nil
	}
	r, f, err := trace.Open(path)
	if err != nil {
		return nil, err
	}
	rec := &recording{src: &trace.Source{Reader: r}, read: r.Offset, close: func() { f.Close() },
		warnings: func() { warnTail(r) }}
	if st, err := f.Stat(); err == nil {
		rec.size = st.Size()
	}
	if !since.IsZero() || !until.IsZero() {
		rec.src = flight.Window(rec.src, since, until)
	}
	return rec, nil
}

// replayInto runs the command's recording through the pipeline into v.
func replayInto(c *cli.Context, v view.View, pace bool) error {
	rec, err := openRecording(c)
	if err != nil {
		return err
	}
	defer rec.close()
	if ts, ok := rec.src.(*trace.Source); ok {
		ts.Pace = pace
	} else if pace {
		return fmt.Errorf("--speed realtime replays a single trace file, not a data dir or a window")
	}
	opt := pipeline.Options{View: v}
	var prog *pipeline.Progress
	if isTerminal(os.Stderr) && rec.size > 8<<20 {
		prog = &pipeline.Progress{W: os.Stderr, Start: time.Now(), Total: rec.size, Read: rec.read}
		opt.OnEvent = prog.Event
	}
	err = pipeline.New(opt).Run(c.Context, rec.src)
	if prog != nil {
		prog.Done()
	}
	rec.warnings()
	return err
}

func incidentsCommand() *cli.Command {
	return &cli.Command{
		Name:      "incidents",
		Usage:     "list the incidents in a recording: failed namespace syscalls tied to their cause, and the stalls",
		ArgsUsage: "FILE|DATA_DIR",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON incident (or stall) object per line"},
		}, windowFlags()...),
		Action: func(c *cli.Context) error {
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			text := &view.IncidentReports{W: out}
			v := view.IncidentsOnly(text)
			if c.Bool("json") {
				v = view.IncidentsOnly(view.NewJSON(out))
			}
			if err := replayInto(c, v, false); err != nil {
				return err
			}
			if !c.Bool("json") && text.Count == 0 {
				msg := "no incidents: no failed namespace syscall in this recording"
				if text.Stalls > 0 {
					msg += " (the stalls above are not failures)"
				}
				fmt.Fprintln(out, msg)
			}
			return nil
		},
	}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a recording's raw events for other tools (jq, pandas)",
		ArgsUsage: "FILE|DATA_DIR",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "format", Value: "jsonl", Usage: "output format: jsonl (one event object per line)"},
		}, windowFlags()...),
		Action: func(c *cli.Context) error {
			if f := c.String("format"); f != "jsonl" {
				return fmt.Errorf("--format %q: only jsonl is supported", f)
			}
			rec, err := openRecording(c)
			if err != nil {
				return err
			}
			defer rec.close()
			out := bufio.NewWriterSize(os.Stdout, 256<<10)
			defer out.Flush()
			enc := json.NewEncoder(out)
			var werr error
			err = rec.src.Run(c.Context, func(ev event.Event) {
				if werr == nil {
					werr = enc.Encode(exported{Type: ev.Kind().String(), Event: ev})
				}
			})
			rec.warnings()
			if err != nil {
				return err
			}
			return werr
		},
	}
}

// exported is one line of `export --format jsonl`: the event's kind and
// the event as recorded.
type exported struct {
	Type  string      `json:"type"`
	Event event.Event `json:"event"`
}

// warnTail tells the user when a recording ended in a torn or corrupt
// record: what came before it was replayed.
func warnTail(r *trace.Reader) {
	if r.Tail != nil {
		fmt.Fprintf(os.Stderr, "fragscope: warning: %v\n", r.Tail)
	}
}
