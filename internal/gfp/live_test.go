package gfp

import (
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// liveUnavailable ends a live test that cannot run. It skips only for a
// developer without root (CI != "true"); as root, or in CI where the
// machines run as root with BTF and tracefs, a missing prerequisite is a
// failure: a skipped live test there would hide a broken loader.
func liveUnavailable(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip(why)
	}
	t.Fatal(why)
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		liveUnavailable(t, why)
	}
}

func kernelSpec(t *testing.T) *btf.Spec {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		liveUnavailable(t, "no kernel BTF: "+err.Error())
	}
	return spec
}

func TestLiveMigratetypes(t *testing.T) {
	got := Migratetypes(kernelSpec(t))
	// Since 4.4 the first four are fixed; CMA and ISOLATE follow depending
	// on the configuration.
	want := []string{"unmovable", "movable", "reclaimable", "highatomic"}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("Migratetypes = %v, want prefix %v", got, want)
	}
	for _, n := range got {
		if n == "pcptypes" || n == "types" || n == "" {
			t.Errorf("alias or hole %q in %v", n, got)
		}
	}
	t.Logf("migratetypes: %v", got)
}

func TestLiveEnumBits(t *testing.T) {
	bits := EnumBits(kernelSpec(t))
	if bits == nil {
		t.Skip("kernel older than 6.10: no ___GFP_*_BIT enum")
	}
	for _, name := range []string{"___GFP_IO_BIT", "___GFP_FS_BIT", "___GFP_NORETRY_BIT", "___GFP_ACCOUNT_BIT", "___GFP_LAST_BIT"} {
		if _, ok := bits[name]; !ok {
			t.Errorf("no %s in %v", name, bits)
		}
	}
}

func TestLiveLoadRunning(t *testing.T) {
	needRoot(t, "tracefs needs root")
	flags, mts, err := LoadRunning()
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(flags)
	kcc, _ := tab.Lookup("GFP_KERNEL")
	if kcc == 0 || !tab.Has(kcc, "__GFP_IO") || !tab.Has(kcc, "__GFP_FS") || !tab.Has(kcc, "__GFP_DIRECT_RECLAIM") {
		t.Errorf("GFP_KERNEL = %#x lacks IO, FS or DIRECT_RECLAIM", kcc)
	}
	// Every single bit the BTF enum names must have the value tracefs shows.
	if bits := EnumBits(kernelSpec(t)); bits != nil {
		for _, f := range BitsTable(bits) {
			if v, ok := tab.Lookup(f.Name); ok && v != f.Value {
				t.Errorf("%s: tracefs %#x, btf %#x", f.Name, v, f.Value)
			}
		}
	}
	if len(mts) < 3 || mts[0] != "unmovable" {
		t.Errorf("migratetypes = %v", mts)
	}
	t.Logf("%d flags; 0x52dc0 = %s; migratetypes %v", len(flags), tab.Format(0x52dc0), mts)
}
