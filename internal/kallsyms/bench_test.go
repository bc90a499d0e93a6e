package kallsyms

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
)

// synthetic returns n kallsyms lines shaped like a 6.x x86_64 file: about
// half text symbols, names of typical length, module symbols at the end.
func synthetic(n int) []byte {
	var b bytes.Buffer
	types := []byte("tTtTtTtTtTtTtTtTtTtd")
	addr := uint64(0xffffffff81000000)
	for i := 0; i < n; i++ {
		addr += 0x40 + uint64(i%7)*0x30
		mod := ""
		if i > n*95/100 {
			mod = fmt.Sprintf("\t[mod%d]", i%40)
		}
		fmt.Fprintf(&b, "%016x %c __sym_%d_%s%s\n", addr, types[i%len(types)], i, "abcdefghij"[:i%11], mod)
	}
	return b.Bytes()
}

func benchNew(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	tab, err := New(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(tab.footprint()), "retained-B")
	b.ReportMetric(float64(tab.footprint())/float64(tab.Len()), "retained-B/sym")
	b.ReportMetric(float64(tab.Len()), "symbols")
}

func BenchmarkNewSynthetic200k(b *testing.B) { benchNew(b, synthetic(200_000)) }

func BenchmarkNewProc(b *testing.B) {
	data, err := os.ReadFile(procKallsyms)
	if err != nil || bytes.HasPrefix(data, []byte("0000000000000000")) {
		b.Skip("kallsyms addresses not readable")
	}
	benchNew(b, data)
}

func BenchmarkResolve(b *testing.B) {
	tab, err := New(bytes.NewReader(synthetic(200_000)))
	if err != nil {
		b.Fatal(err)
	}
	lo, hi := tab.addrs[0], tab.addrs[len(tab.addrs)-1]
	addrs := make([]uint64, 1024)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range addrs {
		addrs[i] = lo + r.Uint64N(hi-lo)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.Resolve(addrs[i&1023])
		i++
	}
}

func BenchmarkFormatFrame(b *testing.B) {
	tab, err := New(bytes.NewReader(synthetic(200_000)))
	if err != nil {
		b.Fatal(err)
	}
	addr := tab.addrs[len(tab.addrs)/2] + 0x10
	b.ReportAllocs()
	for b.Loop() {
		_ = tab.FormatFrame(addr)
	}
}

// TestRetainedHeap checks footprint against what the heap really keeps, and
// keeps the per-symbol cost in check: 16 bytes of index plus the name.
func TestRetainedHeap(t *testing.T) {
	data := synthetic(200_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, err := New(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	fp := tab.footprint()
	t.Logf("%d symbols: footprint %d B (%.1f B/symbol), heap grew %d B", tab.Len(), fp, float64(fp)/float64(tab.Len()), heap)
	if heap > int64(fp)*11/10+64<<10 {
		t.Errorf("heap grew %d B, footprint says %d B", heap, fp)
	}
	var nameBytes int
	for _, m := range tab.meta {
		nameBytes += int(m.nameLen)
	}
	if perSym := (fp - nameBytes) / tab.Len(); perSym > 18 {
		t.Errorf("%d B per symbol besides the name, want <= 18", perSym)
	}
	runtime.KeepAlive(tab)
	// data stays referenced until here, or its collection would be
	// subtracted from the measurement.
	runtime.KeepAlive(data)
}
