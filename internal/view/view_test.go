package view_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/testutil"
	"github.com/fragscope/fragscope/internal/view"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// run drives v the way the command does.
func run(t *testing.T, v view.View, evs []event.Event) {
	t.Helper()
	agg := aggregate.New(nil)
	for _, ev := range evs {
		agg.Add(ev)
		if err := v.Event(ev, agg); err != nil {
			t.Fatalf("Event(%s): %v", ev.Kind(), err)
		}
	}
	if err := v.Close(agg); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", "golden", name), got, *update)
}

func TestJSONGolden(t *testing.T) {
	var out bytes.Buffer
	run(t, view.NewJSON(&out), aggtest.Session())
	golden(t, "session.ndjson", out.Bytes())
}

// TestJSONDeterministic runs the session again with the same instants in
// another time zone: the bytes must not change.
func TestJSONDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	run(t, view.NewJSON(&a), aggtest.Session())
	evs := aggtest.Session()
	zone := time.FixedZone("CST", 8*3600)
	for _, ev := range evs {
		switch e := ev.(type) {
		case *event.AllocFail:
			e.Time = e.Time.In(zone)
		case *event.Tick:
			e.Time = e.Time.In(zone)
		}
	}
	run(t, view.NewJSON(&b), evs)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("output depends on the events' time zone")
	}
}

func TestJSONObjects(t *testing.T) {
	var out bytes.Buffer
	run(t, view.NewJSON(&out), aggtest.Session())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	types := map[string]int{}
	for _, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("line is not one JSON object: %v\n%s", err, l)
		}
		typ, _ := obj["type"].(string)
		tm, _ := obj["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, tm); err != nil || !strings.HasSuffix(tm, "Z") {
			t.Errorf("%s object has time %q, want RFC 3339 UTC", typ, tm)
		}
		types[typ]++
	}
	want := map[string]int{"start": 1, "cgroup_path": 2, "mem_snapshot": 3, "slab_create": 9, "interval": 3,
		"alloc_fail": 1, "netns_create": 1, "ns_syscall": 2, "summary": 1}
	for typ, n := range want {
		if types[typ] != n {
			t.Errorf("%d %q objects, want %d", types[typ], typ, n)
		}
	}
	if lines[len(lines)-1][:19] != `{"type":"summary","` {
		t.Errorf("last object is not the summary: %s", lines[len(lines)-1])
	}
	for _, frag := range []string{
		`"gfp":1097936,"gfp_flags":"GFP_KERNEL|GFP_COMP|GFP_ZERO|GFP_KMEMCG"`,
		`"errno":28,"errno_name":"ENOSPC"`,
		`"namespace_flags":"CLONE_NEWNET"`,
		`"migratetype_name":"Unmovable"`,
	} {
		if !strings.Contains(out.String(), frag) {
			t.Errorf("output lacks %s", frag)
		}
	}
}

func terminal(t *testing.T, tty bool) string {
	var out bytes.Buffer
	run(t, view.NewTerminal(&out, tty), aggtest.Session())
	return out.String()
}

// screens splits terminal output at its screen separators.
func screens(out, sep string) []string { return strings.Split(out, sep)[1:] }

func TestTerminalFailure(t *testing.T) {
	for _, tty := range []bool{false, true} {
		out := terminal(t, tty)
		sep := strings.Repeat("-", 100) + "\n"
		if tty {
			sep = "\x1b[H\x1b[2J"
		}
		out, _, _ = strings.Cut(out, "fragscope session summary")
		scr := screens(out, sep)
		if len(scr) != 3 {
			t.Fatalf("tty=%v: %d screens, want 3 (one per Tick)", tty, len(scr))
		}
		second := scr[1]
		for _, want := range []string{
			"interval 2: 10:00:05.000 - 10:00:10.000 (5s)",
			"!! 3 EVENTS DROPPED in this interval",
			"10:00:05.102 order 6 Unmovable GFP_KERNEL|GFP_COMP|GFP_ZERO|GFP_KMEMCG (0x10c0d0) by exe[18377] in\n" +
				"             clone\n",
			"  cgroup /kubepods/besteffort/pod5f7e/3c1d  hook tracepoint",
			"  Call Trace:\n   warn_alloc_failed\n   __alloc_pages_slowpath\n",
			"   kmem_cache_create\n   nf_conntrack_init_net\n",
			"   do_fork\n   SyS_clone\n",
			"WOULD ORDER 6 SUCCEED? (failure snapshot at 10:00:05.103)",
			"  Node 0 Normal   fragmentation no free block of order 6 or more (largest 5)",
			"kmem_cache_create(nf_conntrack_ffff8803eef66180) size 320 failed in clone",
			"copy_net_ns ENOMEM after 4ms in clone",
			"unshare[3001] unshare(CLONE_NEWNET) = ENOSPC",
			"session 0 created, 1 failed (ENOMEM 1)",
		} {
			if !strings.Contains(second, want) {
				t.Errorf("tty=%v: interval 2 screen lacks %q\n%s", tty, want, second)
			}
		}
		// The order-6 row: nothing allocated, one failure, in the interval and the session.
		if !containsLine(second, []string{"6", "0.0", "0", "1", "|", "0", "1"}) {
			t.Errorf("tty=%v: no order-6 row with its failure:\n%s", tty, second)
		}
		// The free-block table marks Normal's order 6 as fragmented.
		if !containsLine(second, []string{"free", "34178", "20118", "412", "115", "46", "6", "0", "0", "0", "0", "0"}) {
			t.Errorf("tty=%v: Normal zone free blocks missing:\n%s", tty, second)
		}

		// Interval 3: on a tty the stack stays on screen; in a log it was
		// printed with its interval and is not repeated.
		if got := strings.Contains(scr[2], "Call Trace:"); got != tty {
			t.Errorf("tty=%v: interval 3 shows the stack again: %v", tty, got)
		}
		for i, s := range scr {
			for _, line := range strings.Split(s, "\n") {
				if len(line) > 100 {
					t.Errorf("tty=%v screen %d: line of %d columns: %q", tty, i+1, len(line), line)
				}
			}
		}
	}
}

func TestTerminalNotices(t *testing.T) {
	out := terminal(t, false)
	for _, want := range []string{
		"10:00:05.102 ALLOC FAIL   order 6 Unmovable GFP_KERNEL|GFP_COMP|GFP_ZERO|GFP_KMEMCG (0x10c0d0) by",
		"10:00:05.104 SLAB FAIL    exe[18377] kmem_cache_create(nf_conntrack_ffff8803eef66180)",
		"10:00:07.000 SYSCALL FAIL unshare[3001] unshare(CLONE_NEWNET) = ENOSPC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks notice %q", want)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("escape sequences in a log")
	}
	if strings.Contains(terminal(t, true), "ALLOC FAIL ") {
		t.Error("notice lines on a tty, where the next screen would wipe them")
	}
}

func TestTerminalFinalSummary(t *testing.T) {
	out := terminal(t, false)
	i := strings.Index(out, "fragscope session summary")
	if i < 0 {
		t.Fatalf("no final summary:\n%s", out)
	}
	sum := out[i:]
	for _, want := range []string{
		"2017-03-02 10:00:00.000Z - 2017-03-02 10:00:15.000Z  3 intervals (15s), 22 events",
		"!! 3 EVENTS DROPPED in the session",
		"failures by gfp class: GFP_KERNEL 1; by migratetype: Unmovable 1",
		"  Call Trace:\n   warn_alloc_failed\n",
		"  nf_conntrack_<ptr>",
		"CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET",
		"/kubepods/besteffort/pod5f7e/3c1d",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q\n%s", want, sum)
		}
	}
	if !containsLine(sum, []string{"6", "0.0", "0", "1"}) || !containsLine(sum, []string{"0", "433.3", "6500", "0"}) {
		t.Errorf("summary lacks the per-order rows:\n%s", sum)
	}
	var direct bytes.Buffer
	agg := aggregate.New(nil)
	for _, ev := range aggtest.Session() {
		agg.Add(ev)
	}
	if err := view.FinalSummary(&direct, agg); err != nil || direct.String() != sum {
		t.Errorf("FinalSummary differs from what Close wrote (err %v)", err)
	}
}

// containsLine reports whether some line's fields are exactly fields.
func containsLine(text string, fields []string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
