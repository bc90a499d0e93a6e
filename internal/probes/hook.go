package probes

import (
	"fmt"
	"strings"
)

// Hook names one thing fragscope observes.
type Hook string

const (
	HookPageAlloc  Hook = "page_alloc"  // kmem:mm_page_alloc
	HookAllocFexit Hook = "alloc_fexit" // fexit on __alloc_pages*: sees injected failures too
	HookExtfrag    Hook = "extfrag"     // kmem:mm_page_alloc_extfrag
	HookSlabCreate Hook = "slab_create" // kmem_cache_create family
	HookNetns      Hook = "netns"       // copy_net_ns
	HookNsSyscall  Hook = "ns_syscall"  // syscalls:sys_{enter,exit}_{clone,clone3,unshare,setns}, sys_exit_{fork,vfork}
	// HookMemcgOOMWait notes tasks reclaiming against their memory
	// cgroup's limit, the candidates for the cgroup v1 OOM wait.
	HookMemcgOOMWait Hook = "memcg_oom_wait" // vmscan:mm_vmscan_memcg_reclaim_end
	HookCompaction   Hook = "compaction"     // direct compaction stalls: mm_compaction_try_to_compact_pages to try_to_compact_pages' return
	HookReclaim      Hook = "reclaim"        // direct and memcg reclaim stalls: vmscan begin/end pairs
)

// AllHooks lists every hook in display order.
var AllHooks = []Hook{HookPageAlloc, HookAllocFexit, HookExtfrag, HookSlabCreate, HookNetns, HookNsSyscall, HookMemcgOOMWait, HookCompaction, HookReclaim}

// DefaultHooks are attached when the user names none. alloc_fexit is opt-in:
// it adds an fexit trampoline to every page allocation.
var DefaultHooks = []Hook{HookPageAlloc, HookExtfrag, HookSlabCreate, HookNetns, HookNsSyscall, HookMemcgOOMWait, HookCompaction, HookReclaim}

// CoreHooks are the ones `doctor` requires for a zero exit code.
var CoreHooks = []Hook{HookPageAlloc, HookExtfrag, HookNsSyscall}

// Mechanism is how a program attaches.
type Mechanism string

const (
	Auto       Mechanism = "auto"
	TpBTF      Mechanism = "tp_btf"
	RawTp      Mechanism = "raw_tp"
	Tracepoint Mechanism = "tracepoint"
	Fentry     Mechanism = "fentry" // fentry/fexit (alloc_fexit: fexit alone)
	Kprobe     Mechanism = "kprobe" // kprobe/kretprobe pair
)

// Mechanisms lists, best first, the mechanisms each hook can use. raw_tp is
// preferred over tp_btf for the hot allocation tracepoint: both see the same
// raw arguments, and raw_tp measured ~0 ns added per event against ~14 ns.
var Mechanisms = map[Hook][]Mechanism{
	HookPageAlloc:    {RawTp, TpBTF, Tracepoint},
	HookAllocFexit:   {Fentry, Kprobe},
	HookExtfrag:      {RawTp, TpBTF, Tracepoint},
	HookSlabCreate:   {Fentry, Kprobe},
	HookNetns:        {Fentry, Kprobe},
	HookNsSyscall:    {Tracepoint},
	HookMemcgOOMWait: {Tracepoint},
	// fentry and kprobe name how a direct compaction ends (an exit probe
	// with its compact_result); its tracepoints use raw_tp either way.
	HookCompaction: {Fentry, Kprobe, RawTp, Tracepoint},
	HookReclaim:    {RawTp, Tracepoint},
}

// ParseHooks parses a comma-separated hook list; "all" and "default" expand.
func ParseHooks(s string) ([]Hook, error) {
	var out []Hook
	seen := map[Hook]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		var hs []Hook
		switch name {
		case "":
			continue
		case "all":
			hs = AllHooks
		case "default":
			hs = DefaultHooks
		default:
			h := Hook(name)
			if _, ok := Mechanisms[h]; !ok {
				return nil, fmt.Errorf("unknown hook %q (known: %s)", name, HookNames())
			}
			hs = []Hook{h}
		}
		for _, h := range hs {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out, nil
}

// HookNames lists every hook's name, comma-separated, for help and errors.
func HookNames() string {
	var n []string
	for _, h := range AllHooks {
		n = append(n, string(h))
	}
	return strings.Join(n, ", ")
}

// ParseModes parses "hook=mechanism,..." forcing mechanisms per hook; a bare
// mechanism ("kprobe") applies to every hook that supports it.
func ParseModes(s string) (map[Hook]Mechanism, error) {
	out := map[Hook]Mechanism{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		hook, mech, ok := strings.Cut(item, "=")
		if !ok {
			m := Mechanism(hook)
			any := false
			for h, ms := range Mechanisms {
				if m == Auto || contains(ms, m) {
					out[h] = m
					any = true
				}
			}
			if !any {
				return nil, fmt.Errorf("attach mode %q: no hook supports it", item)
			}
			continue
		}
		h, m := Hook(hook), Mechanism(mech)
		ms, known := Mechanisms[h]
		if !known {
			return nil, fmt.Errorf("attach mode %q: unknown hook %q (known: %s)", item, hook, HookNames())
		}
		if m != Auto && !contains(ms, m) {
			return nil, fmt.Errorf("attach mode %q: hook %s supports %v", item, hook, ms)
		}
		out[h] = m
	}
	return out, nil
}

func contains(ms []Mechanism, m Mechanism) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}
