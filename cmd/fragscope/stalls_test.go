package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `replay --top --sort stall` of the memcg reclaim recording ranks the
// cgroup that wrote 400 MiB under a 32 MiB limit first, with its stalls
// and their time; `--json` carries them as stalls and stall_ns.
func TestReplayTopSortStall(t *testing.T) {
	bin := buildBinary(t)
	tr := filepath.Join(tracesDir, "memcg-reclaim-stalls.fst")
	out, err := exec.Command(bin, "replay", "--top", "--sort", "stall", "--limit", "3", tr).Output()
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) > 100 {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
		if strings.HasPrefix(l, "1 ") {
			first = l
		}
	}
	if f := strings.Fields(first); len(f) < 7 || f[1] != "/fragscope-stalls" || f[5] != "371" || f[6] != "240.5ms" {
		t.Errorf("first row %q, want /fragscope-stalls with 371 stalls, 240.5ms:\n%s", first, out)
	}
	js, err := exec.Command(bin, "replay", "--top", "--sort", "stall", "--json", tr).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"sort":"stall"`) || !strings.Contains(string(js), `"stalls":371,"stall_ns":240`) {
		t.Errorf("top --json lacks the stall ranking:\n%.600s", js)
	}
}
