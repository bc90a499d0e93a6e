package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/pipeline"
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

// replayInto runs the command's recording through the pipeline into v.
func replayInto(c *cli.Context, v view.View, pace bool) error {
	r, f, err := openTrace(c)
	if err != nil {
		return err
	}
	defer f.Close()
	opt := pipeline.Options{View: v}
	var prog *pipeline.Progress
	if isTerminal(os.Stderr) {
		if st, err := f.Stat(); err == nil && st.Size() > 8<<20 {
			prog = &pipeline.Progress{W: os.Stderr, Start: time.Now(), Total: st.Size(), Read: r.Offset}
			opt.OnEvent = prog.Event
		}
	}
	err = pipeline.New(opt).Run(c.Context, &trace.Source{Reader: r, Pace: pace})
	if prog != nil {
		prog.Done()
	}
	warnTail(r)
	return err
}

func incidentsCommand() *cli.Command {
	return &cli.Command{
		Name:      "incidents",
		Usage:     "list the incidents in a recording: failed namespace syscalls tied to their cause",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON incident object per line"},
		},
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
				fmt.Fprintln(out, "no incidents: no failed namespace syscall in this recording")
			}
			return nil
		},
	}
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
