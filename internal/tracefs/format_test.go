package tracefs

import (
	"os"
	"strings"
	"testing"
)

func TestParseFormatPageAlloc618(t *testing.T) {
	f, err := os.Open("../../testdata/tracefs/mm_page_alloc.6.18.format")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fm, err := ParseFormat(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Field{
		"pfn":         {Name: "pfn", Type: "unsigned long", Offset: 8, Size: 8},
		"order":       {Name: "order", Type: "unsigned int", Offset: 16, Size: 4},
		"gfp_flags":   {Name: "gfp_flags", Type: "unsigned long", Offset: 24, Size: 8},
		"migratetype": {Name: "migratetype", Type: "int", Offset: 32, Size: 4, Signed: true},
	}
	for name, w := range want {
		if got := fm.Fields[name]; got != w {
			t.Errorf("field %s = %+v, want %+v", name, got, w)
		}
	}
	if fm.Name != "mm_page_alloc" || fm.ID == 0 {
		t.Errorf("name %q id %d", fm.Name, fm.ID)
	}
	if !strings.Contains(fm.Print, "__print_flags") {
		t.Errorf("print fmt lost its flag table: %.80q", fm.Print)
	}
}

// Linux before 4.3 recorded `struct page *page` and a 32-bit gfp_flags
// (layout as in 3.10's include/trace/events/kmem.h).
func TestParseFormatOldPageLayout(t *testing.T) {
	const old = `name: mm_page_alloc
ID: 312
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:struct page * page;	offset:8;	size:8;	signed:0;
	field:unsigned int order;	offset:16;	size:4;	signed:0;
	field:gfp_t gfp_flags;	offset:20;	size:4;	signed:0;
	field:int migratetype;	offset:24;	size:4;	signed:1;

print fmt: "page=%p pfn=%lu order=%d"
`
	fm, err := ParseFormat(strings.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	if p := fm.Fields["page"]; p.Type != "struct page *" || p.Offset != 8 {
		t.Errorf("page field %+v", p)
	}
	if g := fm.Fields["gfp_flags"]; g.Size != 4 || g.Offset != 20 {
		t.Errorf("gfp field %+v", g)
	}
}

func TestParseFormatErrors(t *testing.T) {
	for _, in := range []string{"", "name: x\n", "field:int a;\toffset:zz;\n"} {
		if _, err := ParseFormat(strings.NewReader(in)); err == nil {
			t.Errorf("ParseFormat(%q) succeeded", in)
		}
	}
}
