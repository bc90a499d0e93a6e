package vmtest

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchRes  *Result // nil: the boot failed
)

// benchBoot boots scenario "bench" once, however many benchmarks and
// times the framework calls for it.
func benchBoot(b *testing.B) *Result {
	e := cachedEnv(b, "debian-6.12")
	k := e.kernel(b, "debian-6.12")
	benchOnce.Do(func() { benchRes = e.boot(b, k, "bench", 256) })
	if benchRes == nil {
		b.Fatal("the guest boot failed")
	}
	return benchRes
}

// benchMetrics reports the metrics of the guest's benchmark name, written
// to file by scenario-bench.sh.
func benchMetrics(b *testing.B, file, name string) {
	out, err := benchBoot(b).File(file)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("guest:\n%s", out)
	m, why := parseBench(string(out), name)
	if m == nil {
		b.Fatal(why)
	}
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
}

// BenchmarkVMCompactionHooks: on the development machine nothing compacts
// directly, so the compaction programs' cost is measured in the fragmented
// 256 MiB Debian 6.12 guest (scenario "bench"), where the probes package's
// BenchmarkCompactionHooks runs; its medians over the guest's rounds (ns
// per event of each program of each mechanism, beside its empty raw_tp or
// fexit twin, and the direct compactions per round) are reported here.
// Under TCG every instruction is emulated, so read the programs against
// their empty twins, not as native nanoseconds. Skipped when the guest
// kernel is not cached (see cachedEnv).
func BenchmarkVMCompactionHooks(b *testing.B) {
	benchMetrics(b, "bench.txt", "BenchmarkCompactionHooks")
}

// BenchmarkVMFailureCapture: the development machine's kernel lists no
// node_data in kallsyms, so what reading the free lists adds to a failure
// is measured in the same guest boot, by the probes package's
// BenchmarkFailureCapture (ns per failure with and without the capture).
func BenchmarkVMFailureCapture(b *testing.B) {
	benchMetrics(b, "capture-bench.txt", "BenchmarkFailureCapture")
}

// parseBench reads the metrics of benchmark name from `go test -bench`
// output ("BenchmarkX-2  1  123 ns/op  4.5 a-ns/event ..."), leaving out
// ns/op (the guest's own time per run); a skip or failure is an error.
func parseBench(out, name string) (map[string]float64, string) {
	for _, bad := range []string{"--- SKIP: " + name, "--- FAIL: " + name} {
		if strings.Contains(out, bad) {
			return nil, "the guest's " + name + ": " + bad[4:8] + " (output above)"
		}
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || (f[0] != name && !strings.HasPrefix(f[0], name+"-")) {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, "unreadable metric " + f[i] + " " + f[i+1] + " in: " + line
			}
			if f[i+1] != "ns/op" {
				m[f[i+1]] = v
			}
		}
		if len(m) == 0 {
			return nil, "no metrics in: " + line
		}
		return m, ""
	}
	return nil, "no result line for " + name + " (output above)"
}
