package kallsyms

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const testdata = "../../testdata/kallsyms"

func fixture(t testing.TB, name string) *Table {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// The reconstructed 3.10 table must reproduce the kernel's own call trace
// from the incident, frame by frame.
func TestSeedCallTrace(t *testing.T) {
	tab := fixture(t, "kallsyms-3.10-seed.txt")
	data, err := os.ReadFile(filepath.Join(testdata, "calltrace-3.10-seed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// "[<ffffffff81681b40>] __alloc_pages_slowpath+0x6b7/0x725"; a "? "
		// marks a stale frame and is not part of the symbol.
		addrText, frame, ok := strings.Cut(strings.TrimPrefix(line, "[<"), ">] ")
		if !ok {
			t.Fatalf("bad fixture line %q", line)
		}
		frame = strings.TrimPrefix(frame, "? ")
		addr, err := strconv.ParseUint(addrText, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := tab.FormatFrame(addr); got != frame {
			t.Errorf("FormatFrame(%#x) = %q, kernel printed %q", addr, got, frame)
		}
		n++
	}
	if n != 24 {
		t.Errorf("checked %d frames, want 24", n)
	}
}

func TestResolve(t *testing.T) {
	tab := fixture(t, "kallsyms-3.10-seed.txt")
	tests := []struct {
		addr       uint64
		sym        string
		off, size  uint64
		module     string
		ok         bool
		formatting string
	}{
		// Aliases: the first in file order, as the kernel does.
		{0xffffffff81000000, "_text", 0, 0x1c8, "", true, "_text+0x0/0x1c8"},
		{0xffffffff810001c8, "secondary_startup_64", 0, 0xffffffff81082ed0 - 0xffffffff810001c8, "", true, ""},
		// The 'r' symbol inside it does not cut it short.
		{0xffffffff81681b40, "__alloc_pages_slowpath", 0x6b7, 0x725, "", true, "__alloc_pages_slowpath+0x6b7/0x725"},
		{0xffffffff81b00010, "__weak_fixture_fn", 0x10, 0x40, "", true, "__weak_fixture_fn+0x10/0x40"},
		// Last vmlinux symbol: size unknown, small offsets accepted.
		{0xffffffff81b00050, "_etext", 0x10, 0, "", true, "_etext+0x10"},
		{0xffffffff81c00000, "", 0, 0, "", false, "0xffffffff81c00000"},
		{0xffffffffa03719e1, "nf_conntrack_init_net", 0x101, 0x250, "nf_conntrack", true, "nf_conntrack_init_net+0x101/0x250 [nf_conntrack]"},
		{0xffffffffa0020008, "bpf_prog_6deef7357e7b4530_sd_fw_ingress", 8, 0x100, "bpf", true, ""},
		{0xffffffffa0020108, "bpf_prog_ee0e253c78993a24_sd_devices", 8, 0, "bpf", true, "bpf_prog_ee0e253c78993a24_sd_devices+0x8 [bpf]"},
		{0xffffffff80000000, "", 0, 0, "", false, "0xffffffff80000000"},
		{0, "", 0, 0, "", false, "0x0"},
	}
	for _, tt := range tests {
		sym, off, size, mod, ok := tab.Resolve(tt.addr)
		if sym != tt.sym || off != tt.off || size != tt.size || mod != tt.module || ok != tt.ok {
			t.Errorf("Resolve(%#x) = %q %#x %#x %q %v, want %q %#x %#x %q %v",
				tt.addr, sym, off, size, mod, ok, tt.sym, tt.off, tt.size, tt.module, tt.ok)
		}
		if tt.formatting != "" {
			if got := tab.FormatFrame(tt.addr); got != tt.formatting {
				t.Errorf("FormatFrame(%#x) = %q, want %q", tt.addr, got, tt.formatting)
			}
		}
	}
	if _, ok := tab.Lookup("init_net"); ok {
		t.Error("data symbol init_net was kept")
	}
	if a, ok := tab.Lookup("kmem_cache_create"); !ok || a != 0xffffffff811a5ce0 {
		t.Errorf("Lookup(kmem_cache_create) = %#x %v", a, ok)
	}
}

func TestHidden(t *testing.T) {
	f, err := os.Open(filepath.Join(testdata, "kallsyms-hidden.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = New(f)
	if !errors.Is(err, ErrHidden) {
		t.Fatalf("got %v, want ErrHidden", err)
	}
	if !strings.Contains(err.Error(), "kptr_restrict") {
		t.Errorf("error %q does not say how to fix it", err)
	}
}

func TestUnsortedAndMalformed(t *testing.T) {
	in := "ffffffff81000300 T c\n" +
		"garbage line\n" +
		"ffffffff81000100 T a\n" +
		"zzzzzzzzzzzzzzzz T bad\n" +
		"ffffffff81000200 t b\t[mod_b]\n" +
		"ffffffff81000100 T a_alias\n" +
		"ffffffff81000400 T d" // no trailing newline
	tab, err := New(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 5 {
		t.Errorf("Len = %d, want 5", tab.Len())
	}
	for addr, want := range map[uint64]string{
		0xffffffff81000110: "a+0x10",             // next symbol is in mod_b: size unknown
		0xffffffff81000204: "b+0x4 [mod_b]",      // last of mod_b
		0xffffffff81000304: "c+0x4/0x100",        //
		0xffffffff81000404: "d+0x4",              // last of all
		0xffffffff810000ff: "0xffffffff810000ff", // below the first
	} {
		if got := tab.FormatFrame(addr); got != want {
			t.Errorf("FormatFrame(%#x) = %q, want %q", addr, got, want)
		}
	}
	empty, err := New(strings.NewReader(""))
	if err != nil || empty.Len() != 0 {
		t.Fatalf("empty input: %v, %d symbols", err, empty.Len())
	}
	if _, _, _, _, ok := empty.Resolve(1); ok {
		t.Error("empty table resolved an address")
	}
}

func TestResolveAllocs(t *testing.T) {
	tab := fixture(t, "kallsyms-3.10-seed.txt")
	if n := testing.AllocsPerRun(100, func() { tab.Resolve(0xffffffff81681b40) }); n != 0 {
		t.Errorf("Resolve: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = tab.FormatFrame(0xffffffffa03719e1) }); n > 1 {
		t.Errorf("FormatFrame: %v allocs", n)
	}
}
