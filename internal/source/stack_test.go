package source

import (
	"reflect"
	"testing"
)

func TestTrimTracing(t *testing.T) {
	// Recorded on 6.18 (raw_tp) for a memcg-charge failure of a BPF map.
	raw := []string{
		"bpf_prog_eba0d473748e02bc_page_alloc_raw+0x2c2/0x370 [bpf]",
		"bpf_trace_run4+0x10d/0x1d0",
		"__alloc_frozen_pages_noprof+0x26b/0x340",
		"alloc_pages_mpol+0x86/0x180",
	}
	if got := trimTracing(raw); !reflect.DeepEqual(got, raw[2:]) {
		t.Errorf("raw_tp stack trimmed to %v", got)
	}
	classic := []string{"bpf_prog_1_page_alloc_tp+0x1/0x2", "trace_call_bpf+0x1/0x2", "perf_trace_run_bpf_submit+0x1/0x2",
		"perf_trace_mm_page_alloc+0x1/0x2", "__alloc_pages_noprof+0x1/0x2"}
	if got := trimTracing(classic); len(got) != 1 || got[0] != "__alloc_pages_noprof+0x1/0x2" {
		t.Errorf("tracepoint stack trimmed to %v", got)
	}
	// Recorded in the 6.12 fault-injection guest: the netns hook's trampoline
	// sits inside the allocation's stack.
	mid := []string{"__alloc_pages_noprof+0x9/0x1050", "setup_net+0xab/0x190", "copy_net_ns+0x183/0x2e0",
		"bpf_trampoline_6442525142+0x81/0x154 [bpf]", "copy_net_ns+0x9/0x2e0", "create_new_namespaces+0x117/0x300"}
	want := []string{mid[0], mid[1], mid[2], mid[4], mid[5]}
	if got := trimTracing(mid); !reflect.DeepEqual(got, want) {
		t.Errorf("trampoline not dropped: %v", got)
	}
	only := []string{"bpf_prog_x+0x0/0x1"}
	if got := trimTracing(only); !reflect.DeepEqual(got, only) {
		t.Errorf("all-tracing stack trimmed to %v", got)
	}
}
