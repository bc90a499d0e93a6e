package kmsg

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/kmsg/*.reports.json from the parser's output")

const corpusDir = "../../testdata/kmsg"

func corpusFiles(t testing.TB) []string {
	fs, err := filepath.Glob(filepath.Join(corpusDir, "*.log"))
	if err != nil || len(fs) < 20 {
		t.Fatalf("corpus: %d files (%v), want at least 20", len(fs), err)
	}
	return fs
}

func parseFile(t testing.TB, path string) []Report {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := Parse(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rs == nil {
		rs = []Report{}
	}
	return rs
}

// TestCorpusGolden: every real log parses to its committed JSON golden.
func TestCorpusGolden(t *testing.T) {
	for _, path := range corpusFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".log")
		t.Run(name, func(t *testing.T) {
			rs := parseFile(t, path)
			got, err := json.MarshalIndent(rs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			testutil.Golden(t, filepath.Join(corpusDir, name[:3]+".reports.json"), got, *update)
		})
	}
}
