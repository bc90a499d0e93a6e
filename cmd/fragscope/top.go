package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/view"
)

// topFlags are the ranking flags of `fragscope top` and `replay --top`.
func topFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sort", Value: string(aggregate.SortFragmenting),
			Usage: "rank cgroups by 'fragmenting' (extfrag fallbacks that mix migratetypes in a pageblock), " +
				"'unmovable' (unmovable allocations of order >= 3), 'failures' (allocation failures suffered), 'highorder' (allocations of order >= 3) " +
				"or 'stall' (time stalled in direct compaction and reclaim)"},
		&cli.IntFlag{Name: "limit", Value: 10, Usage: "cgroups to show per ranking; 0 shows all"},
	}
}

// newTopView is the ranking view of `fragscope top` and `replay --top`.
func newTopView(c *cli.Context, w io.Writer, tty bool) (*view.Top, error) {
	key, err := aggregate.ParseSortKey(c.String("sort"))
	if err != nil {
		return nil, fmt.Errorf("--sort: %w", err)
	}
	if c.Int("limit") < 0 {
		return nil, fmt.Errorf("--limit must be 0 (all) or more")
	}
	return view.NewTop(w, view.TopOptions{Sort: key, Limit: c.Int("limit"), JSON: c.Bool("json"), TTY: tty && !c.Bool("json")}), nil
}
