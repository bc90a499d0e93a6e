package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fragscope/fragscope/internal/allocrule"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/snapshot"
)

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "print the free-memory picture once (no BPF, no root needed where /proc is readable)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.IntFlag{Name: "order", Value: -1, Usage: "answer whether an order-N allocation would succeed in each zone now"},
			&cli.StringFlag{Name: "gfp", Value: "GFP_KERNEL", Usage: "the request --order judges: flag names " +
				"(GFP_KERNEL|__GFP_COMP) or a mask (0xcc0), decoded with the running kernel's table"},
			&cli.StringFlag{Name: "root", Hidden: true, Usage: "read proc files below this directory (tests)"},
		},
		Action: func(c *cli.Context) error {
			s, err := snapshot.Take(c.String("root"))
			if err != nil {
				return err
			}
			era := allocrule.ParseRelease(osRelease(c.String("root")))
			order := c.Int("order")
			var j *allocrule.Judgment
			if order >= 0 {
				req, err := snapshotRequest(c.String("gfp"), order, era)
				if err != nil {
					return err
				}
				j = allocrule.Judge(s, req)
			}
			if c.Bool("json") {
				out := struct {
					*snapshot.Snapshot
					Kernel string              `json:"kernel_release,omitempty"`
					GFP    string              `json:"gfp,omitempty"`
					Would  *allocrule.Judgment `json:"would,omitempty"`
				}{Snapshot: s, Kernel: era.Release, Would: j}
				if j != nil {
					out.GFP = j.Request.GFPText
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			row := allocrule.Row(s, "GFP_KERNEL", func(o int) allocrule.Request { return allocrule.KernelRequest(o, era) })
			if err := snapshot.WriteText(os.Stdout, s, row); err != nil {
				return err
			}
			if j != nil {
				fmt.Printf("\norder-%d %s on kernel %s", order, j.Request.GFPText, era)
				if j.Target != "" {
					fmt.Printf(", zonelist from %s down", j.Target)
				}
				fmt.Println(":")
				for _, r := range append(append([]string(nil), j.Request.Reasons...), j.Reasons...) {
					fmt.Printf("  %s\n", r)
				}
				for _, z := range j.Zones {
					fmt.Printf("node %d %-8s %-13s %s\n", z.Node, z.Name, z.Verdict, strings.Join(z.Reasons, "; "))
				}
			}
			return nil
		},
	}
}

// snapshotRequest decodes --gfp with the running kernel's table. Without
// one (no tracefs, no BTF) the default GFP_KERNEL is still judged, by its
// meaning; any other request needs the table or a mask.
func snapshotRequest(expr string, order int, era allocrule.Era) (allocrule.Request, error) {
	var tab allocrule.FlagTable
	var t *gfp.Table
	if flags, _, err := gfp.LoadRunning(); err == nil {
		t = gfp.NewTable(flags)
		tab = t
	}
	mask, err := allocrule.ParseGFP(expr, tab, era)
	if err != nil {
		if tab == nil && strings.TrimSpace(expr) == "GFP_KERNEL" {
			return allocrule.KernelRequest(order, era), nil
		}
		return allocrule.Request{}, fmt.Errorf("snapshot --gfp: %w", err)
	}
	req := allocrule.NewRequest(mask, order, tab, era)
	req.GFPText = fmt.Sprintf("%s (%#x)", expr, mask)
	if t != nil {
		req.GFPText = fmt.Sprintf("%s (%#x)", t.Format(mask), mask)
	}
	return req, nil
}

// osRelease is the kernel release whose rule applies: the tree's own when
// a test root has one, else the running kernel's.
func osRelease(root string) string {
	for _, p := range []string{root + "/proc/sys/kernel/osrelease", "/proc/sys/kernel/osrelease"} {
		if b, err := os.ReadFile(p); err == nil {
			return string(bytes.TrimSpace(b))
		}
	}
	return ""
}
