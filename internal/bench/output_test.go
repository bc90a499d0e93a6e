package bench

import (
	"strings"
	"testing"
	"time"
)

// Lines in the shape internal/view/json.go writes (fields abridged).
const watchOutput = `{"type":"start","time":"2026-03-01T10:00:00Z","hostname":"h","page_size":4096}
{"type":"mem_snapshot","time":"2026-03-01T10:00:00.1Z","reason":"start","zones":[]}
{"type":"interval","time":"2026-03-01T10:00:01Z","seq":1,"begin":"2026-03-01T10:00:00Z","interval_ns":1000000000,"allocs":120,"orders":[{"order":0,"allocs":100,"allocs_per_sec":100,"failures":0,"allocs_by_migratetype":[]},{"order":3,"allocs":20,"allocs_per_sec":20,"failures":0,"allocs_by_migratetype":[]}],"extfrag":{}}
{"type":"interval","time":"2026-03-01T10:00:02Z","seq":2,"begin":"2026-03-01T10:00:01Z","allocs":700050,"orders":[{"order":0,"allocs":700000},{"order":1,"allocs":50}]}
{"type":"interval","time":"2026-03-01T10:00:02.5Z","seq":3,"begin":"2026-03-01T10:00:02Z","allocs":610000,"orders":[{"order":0,"allocs":610000}]}
{"type":"summary","time":"2026-03-01T10:00:02.5Z","begin":"2026-03-01T10:00:00Z","events":3,"ticks":3,"allocs":1310170,"orders":[{"order":0,"allocs":1310100},{"order":1,"allocs":50},{"order":3,"allocs":20}]}
`

func TestReadCounts(t *testing.T) {
	cs, err := ReadCounts(strings.NewReader(watchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 4 {
		t.Fatalf("got %d interval/summary objects, want 4: %+v", len(cs), cs)
	}
	if cs[0].Type != "interval" || cs[0].Order0 != 100 || cs[0].Allocs != 120 ||
		!cs[0].Begin.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) ||
		!cs[0].End.Equal(time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC)) {
		t.Errorf("first interval = %+v", cs[0])
	}
	if cs[3].Type != "summary" || cs[3].Order0 != 1310100 {
		t.Errorf("summary = %+v", cs[3])
	}

	// A window starting at 10:00:01.2 overlaps intervals 2 and 3.
	n, k := Order0Since(cs, time.Date(2026, 3, 1, 10, 0, 1, 200e6, time.UTC))
	if n != 1310000 || k != 2 {
		t.Errorf("Order0Since = %d over %d intervals, want 1310000 over 2", n, k)
	}
	if n, k := Order0Since(cs, time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)); n != 0 || k != 0 {
		t.Errorf("Order0Since(after all) = %d, %d", n, k)
	}
}

func TestReadCountsErrors(t *testing.T) {
	for _, in := range []string{
		"fragscope: page_alloc attached via raw_tp\n", // stderr text on stdout
		`{"type":"interval","time":"yesterday","begin":"2026-03-01T10:00:00Z"}`,
		`{"type":"summary","time":"2026-03-01T10:00:00Z","begin":""}`,
	} {
		if _, err := ReadCounts(strings.NewReader(in)); err == nil {
			t.Errorf("ReadCounts(%q): no error", in)
		}
	}
	// Blank lines and unknown object types are fine.
	cs, err := ReadCounts(strings.NewReader("\n{\"type\":\"alloc_fail\",\"order\":4}\n"))
	if err != nil || len(cs) != 0 {
		t.Errorf("ReadCounts(other) = %v, %v", cs, err)
	}
}

func TestParseAttachReport(t *testing.T) {
	stderr := `fragscope: page_alloc   attached via raw_tp     kmem/mm_page_alloc
fragscope: extfrag      attached via tracepoint kmem/mm_page_alloc_extfrag
fragscope: slab_create  NOT attached: fentry: load: operation not permitted; kprobe: not supported
fragscope: gfp flags will show as numbers: whatever
unrelated line
`
	got := ParseAttachReport(stderr)
	if len(got) != 3 {
		t.Fatalf("ParseAttachReport = %+v", got)
	}
	if a := got["page_alloc"]; !a.Attached || a.Mechanism != "raw_tp" {
		t.Errorf("page_alloc = %+v", a)
	}
	if a := got["extfrag"]; !a.Attached || a.Mechanism != "tracepoint" {
		t.Errorf("extfrag = %+v", a)
	}
	if a := got["slab_create"]; a.Attached || a.Reason != "fentry: load: operation not permitted; kprobe: not supported" {
		t.Errorf("slab_create = %+v", a)
	}
}
