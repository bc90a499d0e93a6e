package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/view"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "replay a recording into the same views and verdicts as watch",
		ArgsUsage: "FILE",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "the NDJSON stream watch --json gives"},
			&cli.BoolFlag{Name: "summary", Usage: "only the final summary"},
			&cli.StringFlag{Name: "speed", Value: "max", Usage: "'max' (as fast as possible) or 'realtime' (recorded pace)"},
			&cli.BoolFlag{Name: "top", Usage: "the cgroup rankings `fragscope top` gives (with --sort, --limit)"},
		}, topFlags()...),
		Action: func(c *cli.Context) error {
			r, f, err := openTrace(c)
			if err != nil {
				return err
			}
			defer f.Close()
			speed := c.String("speed")
			if speed != "max" && speed != "realtime" {
				return fmt.Errorf("--speed %q: use 'max' or 'realtime'", speed)
			}
			out := bufio.NewWriterSize(os.Stdout, 256<<10)
			defer out.Flush()
			if !c.Bool("top") && (c.IsSet("sort") || c.IsSet("limit")) {
				return fmt.Errorf("--sort and --limit rank cgroups: use them with --top")
			}
			var v view.View
			switch {
			case c.Bool("top"):
				top, err := newTopView(c, out, false)
				if err != nil {
					return err
				}
				v = top
				if c.Bool("summary") {
					v = summaryOnly{top}
				}
			case c.Bool("summary") && c.Bool("json"):
				v = summaryOnly{view.NewJSON(out)}
			case c.Bool("summary"):
				// tty mode keeps incidents for the summary instead of printing them as they come.
				v = summaryOnly{view.NewTerminal(out, true)}
			case c.Bool("json"):
				v = view.NewJSON(out)
			default:
				v = view.NewTerminal(out, false)
			}
			p := newPipeline(v, nil, nil)
			if isTerminal(os.Stderr) {
				if st, err := f.Stat(); err == nil && st.Size() > 8<<20 {
					p.prog = &progress{start: time.Now(), total: st.Size(), read: func() int64 { return r.Offset() }}
				}
			}
			src := &trace.Source{Reader: r, Pace: speed == "realtime"}
			err = p.close(src.Run(c.Context, p.emit))
			warnTail(r)
			return err
		},
	}
}

// summaryOnly forwards only Close (the final summary) to a view.
type summaryOnly struct{ v view.View }

func (s summaryOnly) Event(event.Event, *aggregateT) error { return nil }
func (s summaryOnly) Incident(inc *incident.Incident, agg *aggregateT) error {
	if _, ok := s.v.(*view.Terminal); ok {
		return s.v.Incident(inc, agg) // kept for the summary, not printed
	}
	return nil
}
func (s summaryOnly) Close(agg *aggregateT) error { return s.v.Close(agg) }

func incidentsCommand() *cli.Command {
	return &cli.Command{
		Name:      "incidents",
		Usage:     "list the incidents in a recording: failed namespace syscalls tied to their cause",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON incident object per line"},
		},
		Action: func(c *cli.Context) error {
			r, f, err := openTrace(c)
			if err != nil {
				return err
			}
			defer f.Close()
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			text := &textIncidents{w: out}
			var v view.View = incidentsOnly{text}
			if c.Bool("json") {
				v = incidentsOnly{view.NewJSON(out)}
			}
			p := newPipeline(v, nil, nil)
			err = p.close((&trace.Source{Reader: r}).Run(c.Context, p.emit))
			warnTail(r)
			if err != nil {
				return err
			}
			if !c.Bool("json") && text.n == 0 {
				fmt.Fprintln(out, "no incidents: no failed namespace syscall in this recording")
			}
			return nil
		},
	}
}

// incidentsOnly forwards only incidents to a view.
type incidentsOnly struct{ v view.View }

func (s incidentsOnly) Event(event.Event, *aggregateT) error { return nil }
func (s incidentsOnly) Incident(inc *incident.Incident, agg *aggregateT) error {
	return s.v.Incident(inc, agg)
}
func (s incidentsOnly) Close(*aggregateT) error { return nil }

// textIncidents prints each incident's full report, separated by rules.
type textIncidents struct {
	w io.Writer
	n int
}

func (t *textIncidents) Event(event.Event, *aggregateT) error { return nil }
func (t *textIncidents) Close(*aggregateT) error              { return nil }
func (t *textIncidents) Incident(inc *incident.Incident, _ *aggregateT) error {
	if t.n > 0 {
		fmt.Fprintln(t.w, strings.Repeat("-", 100))
	}
	t.n++
	return incident.WriteText(t.w, inc)
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a recording's raw events for other tools (jq, pandas)",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "jsonl", Usage: "output format: jsonl (one event object per line)"},
		},
		Action: func(c *cli.Context) error {
			if f := c.String("format"); f != "jsonl" {
				return fmt.Errorf("--format %q: only jsonl is supported", f)
			}
			r, f, err := openTrace(c)
			if err != nil {
				return err
			}
			defer f.Close()
			out := bufio.NewWriterSize(os.Stdout, 256<<10)
			defer out.Flush()
			enc := json.NewEncoder(out)
			src := &trace.Source{Reader: r}
			var werr error
			err = src.Run(c.Context, func(ev event.Event) {
				if werr == nil {
					werr = enc.Encode(exported{Type: ev.Kind().String(), Event: ev})
				}
			})
			warnTail(r)
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

func openTrace(c *cli.Context) (*trace.Reader, *os.File, error) {
	if c.NArg() != 1 {
		return nil, nil, fmt.Errorf("%s needs exactly one trace FILE (made by `fragscope record -o FILE`)", c.Command.Name)
	}
	return trace.Open(c.Args().First())
}

// warnTail tells the user when a recording ended in a torn or corrupt
// record: what came before it was replayed.
func warnTail(r *trace.Reader) {
	if r.Tail != nil {
		fmt.Fprintf(os.Stderr, "fragscope: warning: %v\n", r.Tail)
	}
}
