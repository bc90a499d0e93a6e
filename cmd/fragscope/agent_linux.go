package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/agent"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/metrics"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name: "agent",
		Usage: "run on a node: every hook the kernel allows, a flight recorder in --data-dir, incidents kept " +
			"with the recording around them, Prometheus metrics on --listen (docs/agent.md)",
		Flags: append(hookFlags(),
			&cli.StringFlag{Name: "data-dir", Value: "/var/lib/fragscope", Usage: "flight recorder segments and kept incidents"},
			&cli.StringFlag{Name: "listen", Value: agent.DefaultListen, Usage: "address for /metrics, /healthz, /readyz and /report (loopback by default)"},
			&cli.StringFlag{Name: "retain-size", Value: "1GiB", Usage: "size of the segments kept (the oldest go first): bytes or 512MiB, 2GB"},
			&cli.DurationFlag{Name: "retain-age", Value: flight.DefaultRetainAge, Usage: "age of the oldest segment kept"},
			&cli.StringFlag{Name: "segment-size", Value: "64MiB", Usage: "rotate a segment at this size"},
			&cli.DurationFlag{Name: "segment-age", Value: flight.DefaultSegmentAge, Usage: "rotate a segment at this age"},
			&cli.DurationFlag{Name: "incident-before", Value: 10 * time.Minute, Usage: "recording kept before each incident"},
			&cli.DurationFlag{Name: "incident-after", Value: time.Minute, Usage: "recording kept after each incident"},
			&cli.IntFlag{Name: "incident-max-count", Value: 100, Usage: "kept incidents (the oldest go first)"},
			&cli.StringFlag{Name: "incident-max-size", Value: "256MiB", Usage: "size of the kept incidents (the oldest go first)"},
			&cli.IntFlag{Name: "metrics-top-cgroups", Value: metrics.DefaultTopCgroups, Usage: "cgroups with series of their own per family; the rest sum into cgroup=\"other\""},
			&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "'json', 'text', or 'auto' (JSON unless stderr is a terminal)"},
		),
		Action: func(c *cli.Context) error {
			log, err := newLogger(c.String("log-format"))
			if err != nil {
				return err
			}
			var sizes [3]int64
			for i, f := range []string{"retain-size", "segment-size", "incident-max-size"} {
				if sizes[i], err = sizeFlag(c, f); err != nil {
					return err
				}
			}
			ctx := c.Context
			if d := c.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			return agent.Run(ctx, agent.Options{
				Live:    liveOptions(c),
				DataDir: c.String("data-dir"), Listen: c.String("listen"),
				RetainBytes: sizes[0], RetainAge: c.Duration("retain-age"),
				SegmentBytes: sizes[1], SegmentAge: c.Duration("segment-age"),
				IncidentBefore: c.Duration("incident-before"), IncidentAfter: c.Duration("incident-after"),
				IncidentMaxCount: c.Int("incident-max-count"), IncidentMaxBytes: sizes[2],
				Metrics: metrics.Options{TopCgroups: c.Int("metrics-top-cgroups"), Version: version},
				Log:     log,
				Ready: func() {
					if f := c.String("ready-file"); f != "" {
						if err := os.WriteFile(f, []byte("ready\n"), 0o644); err != nil {
							log.Error("write ready file", "err", err.Error())
						}
					}
				},
			})
		},
	}
}

func newLogger(format string) (*slog.Logger, error) {
	switch format {
	case "json":
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, nil)), nil
	case "auto":
		if isTerminal(os.Stderr) {
			return slog.New(slog.NewTextHandler(os.Stderr, nil)), nil
		}
	default:
		return nil, fmt.Errorf("--log-format %q: use json, text or auto", format)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nil
}

// sizeFlag reads a size flag: plain bytes or with a unit (64MiB, 1GB).
func sizeFlag(c *cli.Context, name string) (int64, error) {
	n, err := humanize.ParseBytes(c.String(name))
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, fmt.Errorf("--%s %q: give a size such as 65536, 64MiB or 1GB", name, c.String(name))
	}
	return int64(n), nil
}
