package vmtest

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	compactionBenchOnce    sync.Once
	compactionBenchMetrics map[string]float64
	compactionBenchErr     string
)

// BenchmarkVMCompactionHooks: on the development machine nothing compacts
// directly, so the compaction programs' cost is measured in the fragmented
// 256 MiB Debian 6.12 guest (scenario "bench"), where the probes package's
// BenchmarkCompactionHooks runs; its medians over the guest's rounds (ns
// per event of each program of each mechanism, beside its empty raw_tp or
// fexit twin, and the direct compactions per round) are reported here.
// Under TCG every instruction is emulated, so read the programs against
// their empty twins, not as native nanoseconds. One boot, however many
// times the framework calls this; skipped when the guest kernel is not
// cached (see cachedEnv).
func BenchmarkVMCompactionHooks(b *testing.B) {
	e := cachedEnv(b, "debian-6.12")
	k := e.kernel(b, "debian-6.12")
	compactionBenchOnce.Do(func() {
		compactionBenchErr = "the guest boot failed"
		res := e.boot(b, k, "bench", 256)
		out, err := res.File("bench.txt")
		if err != nil {
			compactionBenchErr = err.Error()
			return
		}
		b.Logf("guest:\n%s", out)
		compactionBenchMetrics, compactionBenchErr = parseBench(string(out), "BenchmarkCompactionHooks")
	})
	if compactionBenchMetrics == nil {
		b.Fatal(compactionBenchErr)
	}
	for unit, v := range compactionBenchMetrics {
		b.ReportMetric(v, unit)
	}
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
