package kallsyms

import (
	"bufio"
	"github.com/fragscope/fragscope/internal/testutil"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestLiveLoad(t *testing.T) {
	testutil.RequireRoot(t) // kallsyms addresses read as 0 without root
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Load(); again != tab {
		t.Error("Load read the file twice")
	}
	// Find the symbols in the file independently of the parser.
	want := map[string]uint64{"_printk": 0, "__alloc_pages_noprof": 0}
	f, err := os.Open(procKallsyms)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && (fields[1] == "T" || fields[1] == "t") {
			if _, ok := want[fields[2]]; ok && want[fields[2]] == 0 {
				want[fields[2]], _ = strconv.ParseUint(fields[0], 16, 64)
			}
		}
	}
	found := 0
	for name, addr := range want {
		if addr == 0 {
			continue // not on this kernel version
		}
		found++
		sym, off, size, mod, ok := tab.Resolve(addr)
		if !ok || sym != name || off != 0 || mod != "" || size == 0 {
			t.Errorf("Resolve(%s at %#x) = %q+%#x/%#x %q %v", name, addr, sym, off, size, mod, ok)
		}
		if got, prefix := tab.FormatFrame(addr+1), name+"+0x1/0x"; !strings.HasPrefix(got, prefix) {
			t.Errorf("FormatFrame(%s+1) = %q, want prefix %q", name, got, prefix)
		}
	}
	if found == 0 {
		t.Fatal("neither _printk nor __alloc_pages_noprof in /proc/kallsyms")
	}
	t.Logf("%d text symbols", tab.Len())
}
