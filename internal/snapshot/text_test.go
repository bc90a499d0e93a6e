package snapshot

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt golden files")

func TestWriteText(t *testing.T) {
	for _, tree := range []string{"incident-failing", "incident-compacted", "live-6.18"} {
		t.Run(tree, func(t *testing.T) {
			s := take(t, tree)
			s.Time = time.Date(2017, 3, 3, 10, 0, 1, 0, time.UTC)
			s.PageSize = 4096
			var b bytes.Buffer
			if err := WriteText(&b, s, layoutRow(s)); err != nil {
				t.Fatal(err)
			}
			for i, l := range strings.Split(b.String(), "\n") {
				if len(l) > 100 {
					t.Errorf("line %d is %d columns: %q", i+1, len(l), l)
				}
			}
			golden := filepath.Join("testdata", tree+".txt")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err, "(run go test -update)")
			}
			if b.String() != string(want) {
				t.Errorf("output differs from %s (go test -update to accept):\n%s", golden, b.String())
			}
		})
	}
}

func TestWriteTextWraps(t *testing.T) {
	free := make([]uint64, 14) // arm64 with 64K pages: 14 orders
	free[13] = 1
	s := &Snapshot{PageSize: 65536, Zones: []Zone{{Name: "Normal", FreeBlocks: free, Managed: 1}}}
	var b bytes.Buffer
	if err := WriteText(&b, s, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "  order "); n != 2 {
		t.Errorf("%d bands, want 2:\n%s", n, b.String())
	}
}

// layoutRow is the row of VerdictAt, the layout-only verdict; allocrule's
// rows are tested there.
func layoutRow(s *Snapshot) *VerdictRow {
	cells := map[Verdict]string{VerdictOK: "ok", VerdictFragmentation: "FRAG", VerdictExhaustion: "EXHAUST", VerdictNone: "-"}
	return &VerdictRow{
		Legend: "verdict (free lists alone): ok | FRAG | EXHAUST | - (n/a)",
		Cell:   func(z, o int) string { return cells[s.Zones[z].VerdictAt(o, s.Threshold())] },
	}
}
