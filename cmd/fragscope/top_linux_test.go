package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// `fragscope top --json` live: the command's flags and runLive, with the
// view writing to a buffer (the action's only difference). While it runs,
// this process writes into pipes, whose buffers are unmovable page
// allocations charged to its cgroup.
func TestTopLive(t *testing.T) {
	requireRoot(t)
	var out bytes.Buffer
	cmd := topCommand()
	cmd.Action = func(c *cli.Context) error {
		v, err := newTopView(c, &out, false)
		if err != nil {
			return err
		}
		return runLive(c, v, "")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Throughout the session, not only at its start: an idle machine
		// makes no other unmovable allocations to rank.
		for range 200 {
			time.Sleep(10 * time.Millisecond)
			r, w, err := os.Pipe()
			if err != nil {
				return
			}
			w.Write(make([]byte, 64<<10))
			r.Close()
			w.Close()
		}
	}()
	app := &cli.App{Name: "fragscope", Commands: []*cli.Command{cmd}}
	if err := app.Run([]string{"fragscope", "top", "--json", "--duration", "2500ms", "--interval", "500ms", "--limit", "5"}); err != nil {
		t.Fatal(err)
	}
	<-done
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("want top objects for several intervals and a final one, got:\n%s", out.String())
	}
	type row struct {
		ID        uint64 `json:"cgroup_id"`
		Path      string `json:"cgroup_path"`
		Unmovable uint64
		HighOrder uint64 `json:"high_order"`
		Fallbacks uint64
	}
	var final struct {
		Type          string
		Final         bool
		Sort          string
		CgroupsActive int `json:"cgroups_active"`
		Cgroups       []row
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil {
		t.Fatal(err)
	}
	if final.Type != "top" || !final.Final || final.Sort != "fragmenting" || final.CgroupsActive == 0 || len(final.Cgroups) == 0 || len(final.Cgroups) > 5 {
		t.Fatalf("final object = %+v", final)
	}
	t.Logf("final: %s", lines[len(lines)-1])
	resolved := false
	for _, r := range final.Cgroups {
		resolved = resolved || r.Path != ""
	}
	if !resolved {
		t.Errorf("no cgroup of the ranking was resolved to a path: %+v", final.Cgroups)
	}
}
