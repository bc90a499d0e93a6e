package gfp

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
)

const testdata = "../../testdata/gfp"

// bits618 is the ___GFP_*_BIT enum of the 6.18 development kernel
// (bpftool btf dump file /sys/kernel/btf/vmlinux), so that the enum-name
// fixture can be evaluated on machines without that kernel.
var bits618 = map[string]uint64{
	"___GFP_DMA_BIT": 0, "___GFP_HIGHMEM_BIT": 1, "___GFP_DMA32_BIT": 2,
	"___GFP_MOVABLE_BIT": 3, "___GFP_RECLAIMABLE_BIT": 4, "___GFP_HIGH_BIT": 5,
	"___GFP_IO_BIT": 6, "___GFP_FS_BIT": 7, "___GFP_ZERO_BIT": 8,
	"___GFP_UNUSED_BIT": 9, "___GFP_DIRECT_RECLAIM_BIT": 10,
	"___GFP_KSWAPD_RECLAIM_BIT": 11, "___GFP_WRITE_BIT": 12, "___GFP_NOWARN_BIT": 13,
	"___GFP_RETRY_MAYFAIL_BIT": 14, "___GFP_NOFAIL_BIT": 15, "___GFP_NORETRY_BIT": 16,
	"___GFP_MEMALLOC_BIT": 17, "___GFP_COMP_BIT": 18, "___GFP_NOMEMALLOC_BIT": 19,
	"___GFP_HARDWALL_BIT": 20, "___GFP_THISNODE_BIT": 21, "___GFP_ACCOUNT_BIT": 22,
	"___GFP_ZEROTAGS_BIT": 23, "___GFP_NO_OBJ_EXT_BIT": 24, "___GFP_LAST_BIT": 25,
}

func parseFixture(t testing.TB, name string, enums map[string]uint64) []event.Flag {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := ParseTracefsFormatEnums(f, enums)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return flags
}

func value(t *testing.T, flags []event.Flag, name string) uint64 {
	t.Helper()
	for _, f := range flags {
		if f.Name == name {
			return f.Value
		}
	}
	t.Fatalf("no flag %s", name)
	return 0
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file    string
		enums   map[string]uint64
		entries int
		want    map[string]uint64
	}{
		{"mm_page_alloc-6.18.format", nil, 38, map[string]uint64{
			"GFP_KERNEL": 0xcc0, "GFP_ATOMIC": 0x820, "GFP_NOWAIT": 0x2800,
			"GFP_HIGHUSER_MOVABLE": 0x100cca, "GFP_TRANSHUGE": 0x1c24ca,
			"GFP_TRANSHUGE_LIGHT": 0x1c20ca, "GFP_KERNEL_ACCOUNT": 0x400cc0,
			"__GFP_IO": 1 << 6, "__GFP_FS": 1 << 7, "__GFP_ZERO": 1 << 8,
			"__GFP_DIRECT_RECLAIM": 1 << 10, "__GFP_KSWAPD_RECLAIM": 1 << 11,
			"__GFP_NOWARN": 1 << 13, "__GFP_NORETRY": 1 << 16, "__GFP_COMP": 1 << 18,
			"__GFP_ACCOUNT": 1 << 22, "__GFP_NO_OBJ_EXT": 1 << 24,
		}},
		{"mm_page_alloc-6.18-enumnames.format", bits618, 38, map[string]uint64{
			"GFP_KERNEL": 0xcc0, "GFP_TRANSHUGE": 0x1c24ca, "__GFP_ACCOUNT": 1 << 22,
		}},
		{"mm_page_alloc-4.19.format", nil, 35, map[string]uint64{
			"GFP_KERNEL": 0x6000c0, "GFP_ATOMIC": 0x480020, "GFP_NOWAIT": 0x400000,
			"GFP_HIGHUSER_MOVABLE": 0x6200ca, "GFP_TRANSHUGE_LIGHT": 0x0342ca,
			"GFP_TRANSHUGE": 0x2342ca, "__GFP_ACCOUNT": 0x100000, "__GFP_COMP": 0x4000,
		}},
		{"mm_page_alloc-3.10.format", nil, 29, map[string]uint64{
			"GFP_KERNEL": 0xd0, "GFP_ATOMIC": 0x20, "GFP_TRANSHUGE": 0x4352da,
			"GFP_COMP": 0x4000, "GFP_ZERO": 0x8000, "GFP_KMEMCG": 0x100000,
			"GFP_NOTRACK": 0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			flags := parseFixture(t, tt.file, tt.enums)
			if len(flags) != tt.entries {
				t.Errorf("got %d entries, want %d", len(flags), tt.entries)
			}
			for name, want := range tt.want {
				if got := value(t, flags, name); got != want {
					t.Errorf("%s = %#x, want %#x", name, got, want)
				}
			}
		})
	}
}

func TestParseEnumNamesNeedBits(t *testing.T) {
	f, err := os.Open(filepath.Join(testdata, "mm_page_alloc-6.18-enumnames.format"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = ParseTracefsFormat(f)
	if !errors.Is(err, ErrUnresolved) || !strings.Contains(err.Error(), "___GFP_") {
		t.Fatalf("got %v, want ErrUnresolved naming a ___GFP_ bit", err)
	}
}

// The enum-name table evaluated with the 6.18 bits must equal the table the
// 6.18 kernel printed with numbers.
func TestEnumNamesMatchNumbers(t *testing.T) {
	a := parseFixture(t, "mm_page_alloc-6.18.format", nil)
	b := parseFixture(t, "mm_page_alloc-6.18-enumnames.format", bits618)
	if !slices.Equal(a, b) {
		t.Fatalf("tables differ:\n%v\n%v", a, b)
	}
}

func TestExpressions(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"0x10u", 0x10},
		{"(( gfp_t)0x10u) | (( gfp_t)0x40u) | (( gfp_t)0x80u)", 0xd0},
		{"((((1UL))) << (10))|((((1UL))) << (11))", 0xc00},
		{"(__force unsigned long)(1UL << ___GFP_IO_BIT)", 0x40},
		{"(( gfp_t)(0x400u|0x800u)) & ~(( gfp_t)(0x400u|0x800u))", 0},
		{"( unsigned long)(((0xff) & ~0x0f) | 1)", 0xf1},
		{"1 + 2 << 1", 6},
		{"-1", ^uint64(0)},
		{"010", 8},
		{"(( gfp_t)0)", 0},
		{"(unsigned long long)0x1ULL<<63", 1 << 63},
	}
	for _, tt := range tests {
		p := &exprParser{s: tt.in, enums: map[string]uint64{"___GFP_IO_BIT": 6}}
		got, err := p.expr()
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if p.peek() != 0 {
			t.Errorf("%q: trailing input at %d", tt.in, p.pos)
		}
		if got != tt.want {
			t.Errorf("%q = %#x, want %#x", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "(", "1 <<", "1 << 64", "0xz", "foo", "(1", "1 && 2"} {
		p := &exprParser{s: bad}
		v, err := p.expr()
		if err == nil && p.peek() == 0 {
			t.Errorf("%q: parsed as %#x, want an error", bad, v)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"print fmt: \"%s\", REC->x",
		"print fmt: \"%s\", __print_flags(REC->gfp_flags, \"|\", )",
		"print fmt: \"%s\", __print_flags(REC->gfp_flags, \"|\", {1, \"A\"",
		"print fmt: \"%s\", __print_flags(REC->gfp_flags, \"|\", {1 \"A\"})",
		"print fmt: \"%s\", __print_flags(REC->gfp_flags, \"|\", {1, \"A})",
	} {
		if flags, err := ParseTracefsFormat(strings.NewReader(in)); err == nil {
			t.Errorf("%q: got %v, want an error", in, flags)
		}
	}
}

func TestFormat618(t *testing.T) {
	tab := NewTable(parseFixture(t, "mm_page_alloc-6.18.format", nil))
	tests := []struct {
		gfp  uint64
		want string
	}{
		// What the 6.18 kernel itself printed for this mask (AF_PACKET ring,
		// testdata/gfp/trace-6.18-0x52dc0.txt): single bits follow the table
		// order, which since 6.14 is bit order.
		{0x52dc0, "GFP_KERNEL|__GFP_ZERO|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"},
		{0xcc0, "GFP_KERNEL"},
		{0x400cc0, "GFP_KERNEL_ACCOUNT"},
		{0x140cca, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"},
		{0x820, "GFP_ATOMIC"},
		{0x2820, "GFP_ATOMIC|__GFP_NOWARN"},
		{0x0, "none"},
		{1 << 40, "0x10000000000"},
		{0xcc0 | 1<<40, "GFP_KERNEL|0x10000000000"},
		{0x200, "0x200"}, // bit 9 is unused on 6.18
	}
	for _, tt := range tests {
		if got := tab.Format(tt.gfp); got != tt.want {
			t.Errorf("Format(%#x) = %q, want %q", tt.gfp, got, tt.want)
		}
	}
	trace, err := os.ReadFile(filepath.Join(testdata, "trace-6.18-0x52dc0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(trace), "gfp_flags="+tab.Format(0x52dc0)+"\n") {
		t.Errorf("Format(0x52dc0) differs from the kernel's rendering in trace-6.18-0x52dc0.txt")
	}
}

func TestFormat310(t *testing.T) {
	tab := NewTable(parseFixture(t, "mm_page_alloc-3.10.format", nil))
	// The seed's "page allocation failure: order:6, mode:0x10c0d0". 3.10's
	// gfpflags.h names single bits without the "__" prefix.
	if got, want := tab.Format(0x10c0d0), "GFP_KERNEL|GFP_COMP|GFP_ZERO|GFP_KMEMCG"; got != want {
		t.Errorf("Format(0x10c0d0) = %q, want %q", got, want)
	}
	for _, name := range []string{"__GFP_COMP", "__GFP_ZERO", "__GFP_KMEMCG", "GFP_KMEMCG", "__GFP_WAIT", "__GFP_IO"} {
		if !tab.Has(0x10c0d0, name) {
			t.Errorf("Has(0x10c0d0, %s) = false", name)
		}
	}
	// 3.10's gfpflags.h has no entry for __GFP_FS (one came in 4.4): Has cannot
	// see a flag the kernel never names, and says false rather than guess.
	for _, name := range []string{"__GFP_ACCOUNT", "__GFP_NORETRY", "__GFP_DIRECT_RECLAIM", "__GFP_NOTRACK", "__GFP_FS"} {
		if tab.Has(0x10c0d0, name) {
			t.Errorf("Has(0x10c0d0, %s) = true", name)
		}
	}
	if _, ok := tab.Lookup("__GFP_DIRECT_RECLAIM"); ok {
		t.Error("3.10 has no __GFP_DIRECT_RECLAIM")
	}
	if got := tab.Class(0x10c0d0); got != "GFP_KERNEL" {
		t.Errorf("Class = %q", got)
	}
	// GFP_NOTRACK is 0 without CONFIG_KMEMCHECK: it must not show up.
	if got := tab.Format(0x2000000); got != "0x2000000" {
		t.Errorf("Format(0x2000000) = %q", got)
	}
}

func TestFormat419(t *testing.T) {
	tab := NewTable(parseFixture(t, "mm_page_alloc-4.19.format", nil))
	tests := []struct {
		gfp  uint64
		want string
	}{
		{0x6000c0, "GFP_KERNEL"},
		{0x6280ca, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO"},
		{0x480020, "GFP_ATOMIC"},
		{0x6080c0, "GFP_KERNEL|__GFP_ZERO"}, // mode seen in 4.19 OOM reports
	}
	for _, tt := range tests {
		if got := tab.Format(tt.gfp); got != tt.want {
			t.Errorf("Format(%#x) = %q, want %q", tt.gfp, got, tt.want)
		}
	}
}

func TestHasAndClass(t *testing.T) {
	tab := NewTable(parseFixture(t, "mm_page_alloc-6.18.format", nil))
	const failed = 0x52dc0
	for name, want := range map[string]bool{
		"__GFP_NORETRY": true, "__GFP_NOWARN": true, "__GFP_DIRECT_RECLAIM": true,
		"__GFP_ACCOUNT": false, "__GFP_NOFAIL": false, "GFP_KERNEL": true,
		"GFP_ATOMIC": false, "__GFP_NO_SUCH_FLAG": false,
	} {
		if got := tab.Has(failed, name); got != want {
			t.Errorf("Has(%#x, %s) = %v", uint64(failed), name, got)
		}
	}
	classes := []struct {
		gfp  uint64
		want string
	}{
		{0x52dc0, "GFP_KERNEL"},
		{0x400cc0, "GFP_KERNEL_ACCOUNT"},
		{0x820, "GFP_ATOMIC"},
		{0x2820, "GFP_ATOMIC"},
		{0x2800, "GFP_NOWAIT"},
		{0x140cca, "GFP_HIGHUSER_MOVABLE"},
		{0xc40, "GFP_NOFS"},
		{0xc00, "GFP_NOIO"},
		{0x1c24ca, "GFP_TRANSHUGE"},
		{0x100, "other"},
		{0x1, "other"}, // GFP_DMA alone is a zone, not a class
		{0, "none"},
	}
	for _, tt := range classes {
		if got := tab.Class(tt.gfp); got != tt.want {
			t.Errorf("Class(%#x) = %q, want %q", tt.gfp, got, tt.want)
		}
	}
}

func TestFormatAllocs(t *testing.T) {
	tab := NewTable(parseFixture(t, "mm_page_alloc-6.18.format", nil))
	if n := testing.AllocsPerRun(100, func() { _ = tab.Format(0xcc0) }); n != 0 {
		t.Errorf("Format of a single name: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = tab.Format(0x52dc0 | 1<<40) }); n != 1 {
		t.Errorf("Format of a composite: %v allocs, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = tab.Class(0x52dc0) }); n != 0 {
		t.Errorf("Class: %v allocs", n)
	}
}

func BenchmarkFormat(b *testing.B) {
	tab := NewTable(parseFixture(b, "mm_page_alloc-6.18.format", nil))
	b.ReportAllocs()
	for b.Loop() {
		_ = tab.Format(0x52dc0)
	}
}

func TestBitsTable(t *testing.T) {
	tab := NewTable(BitsTable(bits618))
	if got, want := tab.Format(0x52dc0), "__GFP_IO|__GFP_FS|__GFP_ZERO|__GFP_DIRECT_RECLAIM|__GFP_KSWAPD_RECLAIM|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !tab.Has(0x400000, "__GFP_ACCOUNT") {
		t.Error("no __GFP_ACCOUNT")
	}
}

func TestFallbackMigratetypes(t *testing.T) {
	tests := []struct {
		release string
		want    []string
	}{
		{"3.10.0-514.el7.x86_64", []string{"unmovable", "reclaimable", "movable", "reserve", "isolate"}},
		{"4.3.6", []string{"unmovable", "reclaimable", "movable", "reserve", "isolate"}},
		{"4.4.0-210-generic", []string{"unmovable", "movable", "reclaimable", "highatomic", "isolate"}},
		{"6.18.44-fc-v782", []string{"unmovable", "movable", "reclaimable", "highatomic", "isolate"}},
		{"garbage", nil},
		{"2.4.37", nil},
	}
	for _, tt := range tests {
		if got := FallbackMigratetypes(tt.release); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.release, got, tt.want)
		}
	}
}
