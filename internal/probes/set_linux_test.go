package probes

import (
	"github.com/fragscope/fragscope/internal/testutil"
	"strings"
	"testing"
)

func requireRoot(tb testing.TB) { testutil.RequireRoot(tb) }

func openSet(t *testing.T, opts Options) *Set {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for _, st := range s.Status {
		t.Logf("%-12s attached=%v mech=%s target=%s reason=%s", st.Hook, st.Attached, st.Mechanism, st.Target, st.Reason)
	}
	return s
}

func status(s *Set, h Hook) (attached bool, mech, reason string) {
	for _, st := range s.Status {
		if st.Hook == string(h) {
			return st.Attached, st.Mechanism, st.Reason
		}
	}
	return false, "", "not requested"
}

// Every mechanism of the tracepoint hooks works on any kernel with BTF and
// tracefs (the development and CI machines run 6.18): forcing each must attach.
func TestAttachEachTracepointMechanism(t *testing.T) {
	requireRoot(t)
	f := Probe()
	for _, m := range []Mechanism{RawTp, TpBTF, Tracepoint} {
		t.Run(string(m), func(t *testing.T) {
			if err := f.supports(m); err != nil {
				t.Skipf("kernel lacks %s: %v", m, err)
			}
			s := openSet(t, Options{
				Hooks: []Hook{HookPageAlloc, HookExtfrag},
				Modes: map[Hook]Mechanism{HookPageAlloc: m, HookExtfrag: m},
			})
			for _, h := range []Hook{HookPageAlloc, HookExtfrag} {
				if ok, mech, reason := status(s, h); !ok || mech != string(m) {
					t.Errorf("%s via %s: attached=%v mech=%s reason=%s", h, m, ok, mech, reason)
				}
			}
			// The process itself allocates pages; the counters must move.
			buf := make([]byte, 8<<20)
			for i := range buf {
				buf[i] = 1
			}
			counts, ok, err := s.AllocCounts()
			if err != nil || !ok {
				t.Fatalf("AllocCounts: ok=%v err=%v", ok, err)
			}
			var total uint64
			for _, row := range counts {
				for _, n := range row {
					total += n
				}
			}
			if total == 0 {
				t.Error("no page allocations counted after touching 8 MiB")
			}
		})
	}
}

// Hooks the kernel refuses are reported with the reason, and never stop the
// others. The reason must match what the kernel actually lacks.
func TestUnavailableHooksSayWhy(t *testing.T) {
	requireRoot(t)
	s := openSet(t, Options{Hooks: AllHooks})
	f := Probe()
	if ok, _, reason := status(s, HookNsSyscall); !ok {
		t.Errorf("ns_syscall did not attach: %s", reason)
	}
	if ok, _, reason := status(s, HookPageAlloc); !ok {
		t.Errorf("page_alloc did not attach: %s", reason)
	}
	for _, h := range []Hook{HookSlabCreate, HookNetns} {
		ok, _, reason := status(s, h)
		if ok {
			continue // a kernel with fentry or kprobes: attached, nothing to explain
		}
		if f.Fentry == nil || f.Kprobes == nil {
			t.Errorf("%s not attached although fentry or kprobes work here: %s", h, reason)
		}
		if !strings.Contains(reason, f.Fentry.Error()) || !strings.Contains(reason, f.Kprobes.Error()) {
			t.Errorf("%s reason %q does not name both causes (%v; %v)", h, reason, f.Fentry, f.Kprobes)
		}
	}
	if ok, _, reason := status(s, HookAllocFexit); !ok && f.Fentry != nil && !strings.Contains(reason, f.Fentry.Error()) {
		t.Errorf("alloc_fexit reason %q does not say %v", reason, f.Fentry)
	}
}

// A forced kprobe on a symbol that does not exist fails with "symbol not found"
// and leaves the other hooks attached.
func TestMissingSymbolDegrades(t *testing.T) {
	requireRoot(t)
	if Probe().Kprobes != nil {
		t.Skipf("kernel lacks kprobes (%v): the symbol check is reached only where kprobes exist", Probe().Kprobes)
	}
	s := openSet(t, Options{
		Hooks:   []Hook{HookPageAlloc, HookNetns},
		Modes:   map[Hook]Mechanism{HookNetns: Kprobe},
		Symbols: map[Hook]string{HookNetns: "fragscope_no_such_symbol"},
	})
	if ok, _, reason := status(s, HookNetns); ok || !strings.Contains(reason, "symbol not found") {
		t.Errorf("netns: attached=%v reason=%q", ok, reason)
	}
	if ok, _, _ := status(s, HookPageAlloc); !ok {
		t.Error("page_alloc stopped by the netns failure")
	}
}
