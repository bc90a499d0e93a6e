package main

import (
	"os"

	"github.com/urfave/cli/v2"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name: "top",
		Usage: "rank cgroups, with their container and pod, live: by fragmenting extfrag fallbacks, " +
			"unmovable high-order allocations, failures suffered",
		Flags: append(append(hookFlags(),
			&cli.BoolFlag{Name: "json", Usage: "one NDJSON \"top\" object per interval and a final one (docs/json.md)"},
		), topFlags()...),
		Action: func(c *cli.Context) error {
			v, err := newTopView(c, os.Stdout, isTerminal(os.Stdout))
			if err != nil {
				return err
			}
			return runLive(c, v, "")
		},
	}
}
