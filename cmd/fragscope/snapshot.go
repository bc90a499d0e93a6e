package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/snapshot"
)

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "print the free-memory picture once (no BPF, no root needed where /proc is readable)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.IntFlag{Name: "order", Value: -1, Usage: "answer whether an order-N allocation would succeed in each zone now"},
			&cli.StringFlag{Name: "root", Hidden: true, Usage: "read proc files below this directory (tests)"},
		},
		Action: func(c *cli.Context) error {
			s, err := snapshot.Take(c.String("root"))
			if err != nil {
				return err
			}
			order := c.Int("order")
			if c.Bool("json") {
				out := struct {
					*snapshot.Snapshot
					Would []snapshot.Answer `json:"would,omitempty"`
				}{Snapshot: s}
				if order >= 0 {
					out.Would = s.Would(order)
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if err := snapshot.WriteText(os.Stdout, s); err != nil {
				return err
			}
			if order >= 0 {
				fmt.Println()
				for _, a := range s.Would(order) {
					fmt.Printf("node %d %-8s order-%d: %-13s %s\n", a.Node, a.Zone, a.Order, a.Verdict, a.Reason)
				}
			}
			return nil
		},
	}
}
