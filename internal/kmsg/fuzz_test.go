package kmsg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input parses without panicking, reports are in input
// order with sane line ranges, and feeding the same bytes line by line
// through Scanner gives the same reports. The committed corpus is in
// testdata/fuzz/FuzzParse; the real logs seed it too.
func FuzzParse(f *testing.F) {
	fs, _ := filepath.Glob(filepath.Join(corpusDir, "*.log"))
	for _, p := range fs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := Parse(bytes.NewReader(in), Options{})
		if err != nil {
			t.Fatal(err)
		}
		last := 0
		for _, r := range rs {
			if r.Lines.First < last || r.Lines.Last < r.Lines.First {
				t.Fatalf("lines %+v after %d", r.Lines, last)
			}
			last = r.Lines.First
			if mi := r.MemInfo; mi != nil {
				for _, z := range mi.Zones {
					if fl := z.FreeList; fl != nil && (len(fl.Count) == 0 || fl.PageKB == 0 || fl.Known != nil && len(fl.Known) != len(fl.Count)) {
						t.Fatalf("free list %+v", fl)
					}
					_ = z.Snapshot(0)
				}
			}
		}
		sc := NewScanner(bytes.NewReader(in), Options{})
		n := 0
		for sc.Scan() {
			n++
		}
		if n != len(rs) {
			t.Fatalf("Scanner %d reports, Parse %d", n, len(rs))
		}
	})
}
