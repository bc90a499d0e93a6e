package kmsg

import (
	"fmt"
	"strings"
	"testing"
)

// base is a CONSTRUCTED 5.x-shaped report (numbers from the seed's Normal
// zone, flag names, boost and reserved_highatomic added) that the shape
// tests below dress in the ways logs travel.
const base = `exe: page allocation failure: order:6, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null),cpuset=/,mems_allowed=0
CPU: 1 PID: 18377 Comm: exe Not tainted 5.10.0-8-amd64 #1 Debian 5.10.46-4
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)
Call Trace:
 dump_stack+0x6b/0x83
 warn_alloc.cold+0x7b/0xdf
 ? __alloc_pages_direct_compact+0x14f/0x160
 __alloc_pages_slowpath.constprop.0+0xc8e/0xcd0
 kmem_cache_create_usercopy+0x1b5/0x2f0
 nf_conntrack_init_net+0x101/0x250 [nf_conntrack]
Mem-Info:
active_anon:44762 inactive_anon:52333 isolated_anon:26
 active_file:13358 inactive_file:10581 isolated_file:0
 free:113585 free_pcp:39 free_cma:0
Node 0 active_anon:179048kB inactive_anon:209332kB all_unreclaimable? no
Node 0 Normal free:311184kB boost:0kB min:55536kB low:69420kB high:83304kB reserved_highatomic:2048KB active_anon:139360kB present:13631488kB managed:13367020kB mlocked:316372kB free_pcp:128kB local_pcp:0kB free_cma:0kB
lowmem_reserve[]: 0 0 0 0 0
Node 0 Normal: 34178*4kB (UEM) 20118*8kB (UEM) 412*16kB (UEM) 115*32kB (EM) 46*64kB (M) 6*128kB (H) 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 311640kB
Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB
60360 total pagecache pages
4194173 pages RAM
`

func mustOne(t *testing.T, in string) Report {
	t.Helper()
	rs, err := Parse(strings.NewReader(in), Options{Year: 2024})
	if err != nil {
		t.Fatal(err)
	}
	var pa []Report
	for _, r := range rs {
		if r.Kind == KindPageAllocFailure {
			pa = append(pa, r)
		}
	}
	if len(pa) != 1 {
		t.Fatalf("%d page allocation failures in %d reports:\n%s", len(pa), len(rs), in)
	}
	return pa[0]
}

// check asserts what every dressing of base must still give.
func check(t *testing.T, r Report) {
	t.Helper()
	if r.Order != 6 || r.GFP != 0x40cc0 || strings.Join(r.GFPNames, "|") != "GFP_KERNEL|__GFP_COMP" || r.Cpuset != "/" || r.MemsAllowed != "0" {
		t.Errorf("header: order %d gfp %#x %v cpuset %q mems %q", r.Order, r.GFP, r.GFPNames, r.Cpuset, r.MemsAllowed)
	}
	if r.Task.Comm != "exe" || r.Task.PID != 18377 || r.Task.CPU != 1 || r.Kernel.Release != "5.10.0-8-amd64" {
		t.Errorf("task %+v kernel %+v", r.Task, r.Kernel)
	}
	if len(r.Trace) != 6 || !r.Trace[2].Unreliable || r.Trace[5].Module != "nf_conntrack" {
		t.Errorf("trace %+v", r.Trace)
	}
	mi := r.MemInfo
	if mi == nil || len(mi.Zones) != 1 || mi.Global["free"] != 113585 || len(mi.Nodes) != 1 {
		t.Fatalf("meminfo %+v", mi)
	}
	z := mi.Zones[0]
	if z.MinKB != 55536 || z.ReservedHighatomicKB != 2048 || z.ManagedKB != 13367020 || len(z.Protection) != 5 {
		t.Errorf("zone %+v", z)
	}
	fl := z.FreeList
	if fl == nil || len(fl.Count) != 11 || fl.Count[5] != 6 || fl.Types[5] != "H" || !fl.HaveTotal || fl.TotalKB != 311640 {
		t.Errorf("free list %+v", fl)
	}
	s := z.Snapshot(0)
	if s.Min != 13884 || s.NrFree != 77796 || s.FreeBlocks[4] != 46 || s.LargestFreeOrder() != 5 || s.FreeByMigratetype != nil ||
		len(s.Protection) != 5 || s.ReservedHighatomic != 512 || s.FreeTypeLetters[5] != "H" {
		t.Errorf("snapshot %+v", s)
	}
}

func TestBase(t *testing.T) { check(t, mustOne(t, base)) }

func eachLine(s string, f func(i int, l string) string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString(f(i, l))
		b.WriteByte('\n')
	}
	return b.String()
}

// wrap breaks lines at spaces to width columns, as mail clients do.
func wrap(s string, width int) string {
	return eachLine(s, func(_ int, l string) string {
		var out []string
		for len(l) > width {
			i := strings.LastIndexByte(l[:width], ' ')
			if i <= 0 {
				break
			}
			out = append(out, l[:i])
			l = l[i+1:]
		}
		return strings.Join(append(out, l), "\n")
	})
}

func TestShapes(t *testing.T) {
	shapes := map[string]string{
		"printk":         eachLine(base, func(i int, l string) string { return fmt.Sprintf("[%5d.%06d] %s", 100+i, i, l) }),
		"caller-id":      eachLine(base, func(i int, l string) string { return fmt.Sprintf("[  100.%06d][ T18377] %s", i, l) }),
		"dmesg-T":        eachLine(base, func(_ int, l string) string { return "[Mon Jun  3 10:00:00 2024] " + l }),
		"syslog":         eachLine(base, func(_ int, l string) string { return "Nov 12 15:15:41 node-7 kernel: [ 12.345678] " + l }),
		"journal-iso":    eachLine(base, func(_ int, l string) string { return "2024-06-03T10:00:00+0000 node-7 kernel: " + l }),
		"logcat":         eachLine(base, func(_ int, l string) string { return "<4>[  123.456789][pid:18377,cpu1,exe]" + l }),
		"vendor":         eachLine(base, func(_ int, l string) string { return "<6>[  123.456789] (1)[18377:exe]" + l }),
		"quoted":         eachLine(base, func(i int, l string) string { return strings.Repeat("> ", 1+i%3) + l }),
		"quoted-tight":   eachLine(base, func(_ int, l string) string { return ">>> " + l }),
		"crlf":           eachLine(base, func(_ int, l string) string { return l + "\r" }),
		"kmsg":           eachLine(base, func(i int, l string) string { return fmt.Sprintf("4,%d,%d,-;%s\n SUBSYSTEM=mm", 900+i, 1000000+i, l) }),
		"wrapped-72":     wrap(base, 72),
		"wrapped-quoted": eachLine(wrap(base, 60), func(_ int, l string) string { return "> " + l }),
		"syslog-012":     "Nov 12 15:15:41 node-7 kernel: " + strings.ReplaceAll(strings.TrimSuffix(base, "\n"), "\n", "#012") + "\n",
		// Quoted-printable: every '=' written "=3D", long lines soft-broken.
		"quoted-printable": eachLine(strings.ReplaceAll(base, "=", "=3D"), func(_ int, l string) string {
			var out []string
			for len(l) > 70 {
				out = append(out, l[:70]+"=")
				l = l[70:]
			}
			return strings.Join(append(out, l), "\n")
		}),
		// Markdown: pairs of '*' became italics and vanished.
		"markdown":         strings.ReplaceAll(base, "*", ""),
		"markdown-escaped": strings.ReplaceAll(base, "*", `\*`),
		// Another CPU's lines inside the dump, between and inside lines.
		"interleaved": strings.Replace(strings.Replace(base, "Node 0 Normal free:", "e1000e 0000:00:19.0 eth0: NIC Link is Up\nNode 0 Normal free:", 1),
			"46*64kB (M) ", "46*64kB (M)\n[  12.000001] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready\n[  12.000002] ", 1),
		"header-wrapped": strings.Replace(base, "failure: order:6,", "failure: \norder:6,", 1),
		"names-wrapped":  strings.Replace(base, "GFP_KERNEL|", "GFP_KERNEL|\n", 1),
		"cut-token":      strings.Replace(base, "115*32kB (EM) ", "115*3\n2kB (EM) ", 1),
	}
	for name, in := range shapes {
		t.Run(name, func(t *testing.T) {
			r := mustOne(t, in)
			check(t, r)
			for _, u := range r.Unreadable {
				t.Errorf("unreadable: %s", u)
			}
		})
	}
}

func TestTimestamps(t *testing.T) {
	r := mustOne(t, "[Mon Jun  3 10:00:00 2024] "+base)
	if r.Time.Wall.Year() != 2024 || r.Time.Wall.Hour() != 10 {
		t.Errorf("dmesg -T: %+v", r.Time)
	}
	r = mustOne(t, "Nov 12 15:15:41 h kernel: [ 12.345678][ T18377] "+base)
	if r.Time.Wall.Year() != 2024 || r.Time.Wall.Month() != 11 || r.Time.Uptime.Microseconds() != 12345678 || r.Time.Caller != "T18377" {
		t.Errorf("syslog: %+v", r.Time)
	}
}

// TestElisionAndDamage: a lost column costs that column, a garbled line
// that line, and both are said.
func TestElisionAndDamage(t *testing.T) {
	in := strings.Replace(base, "412*16kB (UEM) 115*32kB (EM)", "... 115*32kB (EM)", 1)
	in = strings.Replace(in, "lowmem_reserve[]: 0 0 0 0 0", "lowmem_reserve[]: 0 0 x 0", 1)
	in = strings.Replace(in, " dump_stack+0x6b/0x83\n", " dump_stack+0x6b/0x83\n[...]\n", 1)
	r := mustOne(t, in)
	fl := r.MemInfo.Zones[0].FreeList
	if fl.Known == nil || fl.Known[2] || !fl.Known[3] || fl.Count[3] != 115 {
		t.Errorf("free list %+v", fl)
	}
	if len(r.Unreadable) < 3 {
		t.Errorf("unreadable %q", r.Unreadable)
	}
}

// TestOrderAndPairs: several reports in order, each Mem-Info with its own
// header, a kmem_cache_create failure before the page allocation failure.
func TestOrderAndPairs(t *testing.T) {
	second := strings.Replace(base, "order:6", "order:4", 1)
	in := "kmem_cache_create(nf_conntrack_1(5:docker-abc.scope)) failed with error -12\nUnable to create nf_conn slab cache\n" + base + "warn_alloc: 2 callbacks suppressed\n" + second
	rs, err := Parse(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range rs {
		kinds = append(kinds, string(r.Kind))
	}
	want := "slab_create_failure conntrack_slab page_alloc_failure callbacks_suppressed page_alloc_failure"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("kinds %v, want %s", kinds, want)
	}
	if s := rs[0].Slab; s.Base != "nf_conntrack_1" || s.MemcgID != 5 || s.Cgroup != "docker-abc.scope" || s.Errno != -12 {
		t.Errorf("slab %+v", s)
	}
	if rs[2].Order != 6 || rs[4].Order != 4 || rs[2].MemInfo == rs[4].MemInfo || rs[4].MemInfo == nil || rs[3].Suppressed != 2 {
		t.Errorf("pairs: %d %d", rs[2].Order, rs[4].Order)
	}
}

// TestArm64PageSize64k: CONSTRUCTED 64 kB-page free list (14 orders).
func TestArm64PageSize64k(t *testing.T) {
	in := "Node 0 DMA free:1048576kB min:22528kB low:28160kB high:33792kB present:4194304kB managed:4100096kB\n" +
		"Node 0 DMA: 10*64kB (UM) 5*128kB (M) 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB 0*8192kB 0*16384kB 0*32768kB 0*65536kB 0*131072kB 0*262144kB 1*524288kB (M) = 525568kB\n"
	rs, _ := Parse(strings.NewReader(in), Options{})
	if len(rs) != 1 || rs[0].MemInfo.PageKB != 64 {
		t.Fatalf("%+v", rs)
	}
	z := rs[0].MemInfo.Zones[0]
	s := z.Snapshot(0)
	if len(s.FreeBlocks) != 14 || s.FreeBlocks[13] != 1 || s.Min != 352 || s.Managed != 64064 {
		t.Errorf("snapshot %+v", s)
	}
}

// TestHighMem32: CONSTRUCTED 32-bit non-NUMA dump with HighMem.
func TestHighMem32(t *testing.T) {
	in := "Mem-Info:\nDMA free:3512kB min:64kB low:80kB high:96kB present:15916kB managed:15916kB\nlowmem_reserve[]: 0 833 3011 3011\n" +
		"Normal free:4040kB min:3724kB low:4652kB high:5584kB present:894968kB managed:853628kB\nlowmem_reserve[]: 0 0 17429 17429\n" +
		"HighMem free:1830552kB min:512kB low:2924kB high:5336kB present:2230888kB managed:2230888kB\nlowmem_reserve[]: 0 0 0 0\n" +
		"DMA: 2*4kB 2*8kB 0*16kB 1*32kB 0*64kB 1*128kB 1*256kB 0*512kB 1*1024kB 1*2048kB 0*4096kB = 3512kB\n" +
		"Normal: 240*4kB 89*8kB 51*16kB 18*32kB 6*64kB 1*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 3576kB\n" +
		"HighMem: 38*4kB 22*8kB 13*16kB 9*32kB 11*64kB 7*128kB 6*256kB 3*512kB 4*1024kB 3*2048kB 442*4096kB = 1826168kB\n"
	rs, _ := Parse(strings.NewReader(in), Options{})
	if len(rs) != 1 || len(rs[0].MemInfo.Zones) != 3 {
		t.Fatalf("%+v", rs)
	}
	if len(rs[0].Unreadable) != 0 {
		t.Errorf("unreadable %q", rs[0].Unreadable)
	}
	for _, z := range rs[0].MemInfo.Zones {
		if z.Node != -1 || z.FreeList == nil || len(z.Protection) != 4 {
			t.Errorf("zone %+v", z)
		}
	}
}
