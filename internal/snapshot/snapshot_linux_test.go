package snapshot

import (
	"bytes"
	"errors"
	"github.com/fragscope/fragscope/internal/testutil"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/fragscope/fragscope/internal/procfs"
)

const debugfs = "/sys/kernel/debug"

// TestIndicesMatchLiveKernel reads /proc/buddyinfo and the kernel's own
// extfrag_index and unusable_index at nearly the same moment and checks that
// our arithmetic gives the kernel's numbers. Free lists move all the time, so
// an attempt counts when every value is within a small tolerance; up to 5
// attempts are made, and an attempt whose buddyinfo did not change while the
// kernel files were read must match exactly.
//
// It needs root (pagetypeinfo aside, debugfs is root-only). It skips when not
// root, except under CI=true, where the machines run as root and a skip would
// hide a broken setup.
func TestIndicesMatchLiveKernel(t *testing.T) {
	testutil.RequireRoot(t) // debugfs is root-only
	ensureDebugfs(t)

	const attempts, tol = 5, 3
	var last string
	for i := 0; i < attempts; i++ {
		before := readFile(t, "/proc/buddyinfo")
		ext := readFile(t, debugfs+"/extfrag/extfrag_index")
		unu := readFile(t, debugfs+"/extfrag/unusable_index")
		after := readFile(t, "/proc/buddyinfo")

		zones, err := procfs.ParseBuddyinfo(bytes.NewReader(before))
		if err != nil {
			t.Fatal(err)
		}
		s := &Snapshot{}
		for _, z := range zones {
			s.Zones = append(s.Zones, Zone{Node: z.Node, Name: z.Zone, FreeBlocks: z.Free})
		}
		exact := bytes.Equal(before, after)
		tolerance := tol
		if exact {
			tolerance = 0
		}
		var diffs []string
		for _, f := range []struct {
			name     string
			text     []byte
			unusable bool
		}{{"extfrag_index", ext, false}, {"unusable_index", unu, true}} {
			kern, err := procfs.ParseExtfrag(bytes.NewReader(f.text), f.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(kern) != len(zones) {
				t.Fatalf("%s has %d zones, buddyinfo %d", f.name, len(kern), len(zones))
			}
			if d := compareIndices(s, kern, f.unusable, tolerance); d != "" {
				diffs = append(diffs, f.name+": "+d)
			}
		}
		if len(diffs) == 0 {
			t.Logf("attempt %d matched (buddyinfo stable: %v)", i+1, exact)
			return
		}
		last = strings.Join(diffs, "\n")
		t.Logf("attempt %d: %s", i+1, last)
	}
	t.Fatalf("computed indices differ from the kernel's on all %d attempts; last:\n%s", attempts, last)
}

// ensureDebugfs mounts debugfs at /sys/kernel/debug when it is not mounted.
// It stays mounted afterwards: other tools on these machines expect it there,
// and unmounting could pull it from under a concurrent test.
func ensureDebugfs(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debugfs + "/extfrag"); err == nil {
		return
	}
	if !mounted(t, debugfs) {
		if err := syscall.Mount("debugfs", debugfs, "debugfs", 0, ""); err != nil {
			t.Fatalf("debugfs is not mounted and mount -t debugfs debugfs %s failed: %v", debugfs, err)
		}
		t.Logf("mounted debugfs at %s", debugfs)
	}
	if _, err := os.Stat(debugfs + "/extfrag/extfrag_index"); err != nil {
		t.Fatalf("no extfrag files in debugfs (kernel without CONFIG_COMPACTION or CONFIG_DEBUG_FS?): %v", err)
	}
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b := readFile(t, "/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		// Field 5 is the mount point.
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			t.Fatalf("%s: %v (root but no permission: lockdown?)", name, err)
		}
		t.Fatal(err)
	}
	return b
}
