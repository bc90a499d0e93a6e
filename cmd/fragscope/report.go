package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/report"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/view"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name: "report",
		Usage: "write one self-contained HTML file of a recording, a data dir or a kernel log: the verdict, " +
			"the incidents, free blocks by order over time, rates, fallbacks, cgroups (docs/report.md)",
		ArgsUsage: "RECORDING|DATA_DIR|KERNEL_LOG",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the HTML to `FILE` ('-': stdout, the default when stdout is not a terminal)"},
			&cli.IntFlag{Name: "year", Usage: "for a kernel log: the year of syslog and journalctl dates, which print none"},
		}, windowFlags()...),
		Action: runReport,
	}
}

func runReport(c *cli.Context) (err error) {
	if c.NArg() != 1 {
		return fmt.Errorf("report needs exactly one RECORDING, agent DATA_DIR or KERNEL_LOG")
	}
	out := c.String("output")
	if out == "" {
		if isTerminal(os.Stdout) {
			return fmt.Errorf("report writes HTML: name the file with -o FILE (or -o - for stdout)")
		}
		out = "-"
	}
	path := c.Args().First()
	src, opt, done, err := reportSource(c, path)
	if err != nil {
		return err
	}
	defer done()

	var w io.Writer = os.Stdout
	var tmp *os.File
	if out != "-" {
		// Written beside the target and renamed: a failed run leaves no
		// half report, and never truncates an older one.
		tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
		if err != nil {
			return fmt.Errorf("report: %w (choose a writable -o FILE)", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := report.Render(c.Context, src, opt, bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		tmp = nil
	}
	return nil
}

// reportSource opens what report reads: a data dir or a trace file as
// replay does, anything else as a kernel log as explain does.
func reportSource(c *cli.Context, path string) (event.Source, report.Options, func(), error) {
	opt := report.Options{Title: path}
	isTrace := false
	if !flight.IsDataDir(path) {
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			return nil, opt, nil, fmt.Errorf("report: %s is a directory but not an agent data dir (no segments/ in it): name a trace file, a data dir or a kernel log", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, opt, nil, fmt.Errorf("report: %w", err)
		}
		var magic [len(trace.Magic)]byte
		n, _ := io.ReadFull(f, magic[:])
		f.Close()
		isTrace = string(magic[:n]) == trace.Magic
		if !isTrace {
			if c.IsSet("since") || c.IsSet("until") {
				return nil, opt, nil, fmt.Errorf("--since and --until cut a recording; %s is read as a kernel log", path)
			}
			inputs, err := explainInputs([]string{path})
			if err != nil {
				return nil, opt, nil, err
			}
			opt.Input = report.InputKernelLog
			src := &explainSource{inputs: inputs, year: c.Int("year"), read: &countingReader{},
				reports: &view.IncidentReports{W: io.Discard}}
			return src, opt, func() { inputs[0].close() }, nil
		}
	}
	rec, err := openRecording(c)
	if err != nil {
		return nil, opt, nil, err
	}
	opt.Input = report.InputRecording
	if !isTrace {
		opt.Input = report.InputDataDir
	}
	for _, f := range []string{"since", "until"} {
		if c.IsSet(f) {
			opt.Title += " --" + f + " " + c.String(f)
		}
	}
	return rec.src, opt, func() { rec.close(); rec.warnings() }, nil
}
