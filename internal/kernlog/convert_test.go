package kernlog

import (
	"context"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/view"
)

// A kmem_cache_create failure printed before or after the page allocation
// failure under it (3.10 prints the allocation first; a log cut or two CPUs
// can show the other order) ends in one incident with both reports.
func TestSlabAndPageFailureOneIncident(t *testing.T) {
	page := []string{
		"[  100.000001] exe: page allocation failure: order:6, mode:0x10c0d0",
		"[  100.000002] CPU: 1 PID: 18377 Comm: exe Not tainted 3.10.0-514.el7.x86_64 #1",
		"[  100.000003] Call Trace:",
		"[  100.000004]  [<ffffffff811869a0>] warn_alloc_failed+0x110/0x180",
		"[  100.000005]  [<ffffffff811f3bb9>] memcg_register_cache+0xb9/0xe0",
		"[  100.000006]  [<ffffffff811a5d0b>] kmem_cache_create+0x2b/0x30",
		"[  100.000007]  [<ffffffffa03719e1>] nf_conntrack_init_net+0x101/0x250 [nf_conntrack]",
		"[  100.000008]  [<ffffffff81567bcc>] copy_net_ns+0x7c/0x130",
	}
	slab := []string{
		"[  100.000010] kmem_cache_create(nf_conntrack_ffff8803eef66180) failed with error -12",
		"[  100.000011] CPU: 1 PID: 18377 Comm: exe Not tainted 3.10.0-514.el7.x86_64 #1",
		"[  100.000012] Call Trace:",
		"[  100.000013]  [<ffffffff811a5d0b>] kmem_cache_create+0x2b/0x30",
		"[  100.000014]  [<ffffffffa03719e1>] nf_conntrack_init_net+0x101/0x250 [nf_conntrack]",
	}
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"page first", append(append([]string{}, page...), slab...)},
		{"slab first", append(append([]string{}, slab...), page...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var incs []*incident.Incident
			p := pipeline.New(pipeline.Options{View: view.IncidentsOnly(&view.IncidentReports{W: &strings.Builder{}}),
				OnIncident: func(inc *incident.Incident) { incs = append(incs, inc) }})
			src := &File{R: strings.NewReader(strings.Join(tc.lines, "\n") + "\n"), Options: Options{Source: "t"}}
			if err := p.Run(context.Background(), src); err != nil {
				t.Fatal(err)
			}
			if len(incs) != 1 {
				t.Fatalf("%d incidents, want one", len(incs))
			}
			inc := incs[0]
			if inc.ClosedBy != incident.ClosedByKernelLog || len(inc.Kernel.Reports) != 2 || len(inc.Slabs) != 1 || len(inc.Allocs) != 1 {
				t.Errorf("closed by %s with %d reports, %d slabs, %d allocations: want kernel_log, 2, 1, 1",
					inc.ClosedBy, len(inc.Kernel.Reports), len(inc.Slabs), len(inc.Allocs))
			}
			// No Mem-Info: unknown, saying so.
			if inc.Verdict.Cause != incident.CauseUnknown || !strings.Contains(strings.Join(inc.Verdict.Reasons, " "), "no Mem-Info") {
				t.Errorf("verdict %s %q, want unknown for want of a Mem-Info", inc.Verdict.Cause, inc.Verdict.Reasons)
			}
		})
	}
}

// Uptime-only logs are anchored at Epoch; syslog dates without a year are
// put in Epoch's year unless Options.Year says.
func TestTimes(t *testing.T) {
	var got []event.Event
	src := &File{R: strings.NewReader("[   12.500000] x: page allocation failure: order:1, mode:0x20\n"), Options: Options{Source: "t"}}
	if err := src.Run(context.Background(), func(ev event.Event) { got = append(got, ev) }); err != nil {
		t.Fatal(err)
	}
	var kr *event.KernelReport
	for _, ev := range got {
		if k, ok := ev.(*event.KernelReport); ok {
			kr = k
		}
	}
	if kr == nil || !kr.Time.Equal(Epoch.Add(12500*1e6)) {
		t.Errorf("report time %v, want Epoch + 12.5 s", kr)
	}
}
