package gfp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
)

func FuzzParseTracefsFormat(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdata, "*.format"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(`print fmt: "%s", __print_flags(REC->gfp_flags, "|", {(unsigned long)(1UL << ___GFP_IO_BIT), "__GFP_IO"}, { 0, ((void *)0) })`)
	f.Add(`__print_flags(x, "|", {((((((((((1)))))))))), "A"})`)
	f.Add(`__print_flags(x, "|", {~0, "\"q\\"}, {-1, NULL})`)
	f.Fuzz(func(t *testing.T, in string) {
		flags, err := ParseTracefsFormatEnums(strings.NewReader(in), bits618)
		if err != nil {
			return
		}
		// Whatever parsed must survive a round trip through the plain-hex
		// form older kernels print, and decode without panicking.
		var b strings.Builder
		b.WriteString(`print fmt: "%s", __print_flags(REC->gfp_flags, "|"`)
		var kept []event.Flag
		for _, fl := range flags {
			if strings.ContainsAny(fl.Name, "\"\\") {
				continue
			}
			kept = append(kept, fl)
			fmt.Fprintf(&b, `, {(unsigned long)0x%xUL, "%s"}`, fl.Value, fl.Name)
		}
		b.WriteString(`) : "none"`)
		if len(kept) > 0 {
			again, err := ParseTracefsFormat(strings.NewReader(b.String()))
			if err != nil {
				t.Fatalf("round trip of %v: %v", kept, err)
			}
			if len(again) != len(kept) {
				t.Fatalf("round trip: %d entries, want %d", len(again), len(kept))
			}
			for i := range kept {
				if again[i] != kept[i] {
					t.Fatalf("round trip entry %d: %v, want %v", i, again[i], kept[i])
				}
			}
		}
		tab := NewTable(flags)
		for _, g := range []uint64{0, 1, 0x52dc0, ^uint64(0)} {
			_ = tab.Format(g)
			_ = tab.Class(g)
		}
	})
}
