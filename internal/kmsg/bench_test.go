package kmsg

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// BenchmarkParse100MB parses a 100 MB log built from the corpus, repeated,
// with ordinary kernel noise (network, USB, audit lines) between reports,
// as a busy node's journal would hold them.
func BenchmarkParse100MB(b *testing.B) {
	var corpus [][]byte
	for _, p := range corpusFiles(b) {
		c, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		corpus = append(corpus, c)
	}
	noise := []string{
		"[%d.%06d] IPv6: ADDRCONF(NETDEV_CHANGE): veth%x: link becomes ready\n",
		"[%d.%06d] cni0: port %d(veth3c2) entered forwarding state\n",
		"[%d.%06d] audit: type=1400 audit(1700000000.%d:42): apparmor=\"STATUS\" operation=\"profile_load\"\n",
		"[%d.%06d] usb 1-1.%d: new high-speed USB device number 5 using ehci-pci\n",
	}
	var in bytes.Buffer
	for i := 0; in.Len() < 100<<20; i++ {
		in.Write(corpus[i%len(corpus)])
		for j := 0; j < 200; j++ {
			fmt.Fprintf(&in, noise[j%len(noise)], i, j, j)
		}
	}
	data := in.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for b.Loop() {
		rs, err := Parse(bytes.NewReader(data), Options{})
		if err != nil {
			b.Fatal(err)
		}
		n = len(rs)
	}
	b.ReportMetric(float64(n), "reports")
}
