package slabname

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func TestGroup(t *testing.T) {
	tests := []struct{ in, want string }{
		// The incident (3.10): per-netns conntrack caches and their memcg clones.
		{"nf_conntrack_ffff8803eef66180", "nf_conntrack_<ptr>"},
		{"nf_conntrack_ffffffff81a26d80", "nf_conntrack_<ptr>"}, // init_net
		{"nf_conntrack_ffff8803eef66180(2:docker-abc.scope)", "nf_conntrack_<ptr>(<memcg>)"},
		{"nf_conntrack_ffff8803eef66180(17:docker-4f1e0c9a2b7d.scope)", "nf_conntrack_<ptr>(<memcg>)"},
		// 3.19..5.8 memcg clones of ordinary caches.
		{"dentry(1234:session-1.scope)", "dentry(<memcg>)"},
		{"kmalloc-64(3:)", "kmalloc-64(<memcg>)"},
		// With 0x, hashed %p, several pointers.
		{"cache_0xffff8803eef66180", "cache_<ptr>"},
		{"cache_000000001a2b3c4d", "cache_<ptr>"},
		{"a_ffff880012345678_b_ffff880087654321", "a_<ptr>_b_<ptr>"},
		{"FFFF8803EEF66180", "FFFF8803EEF66180"}, // %p never prints upper case
		// Sizes and instance numbers are identity: unchanged.
		{"kmalloc-rcl-96", "kmalloc-rcl-96"},
		{"kmalloc-cg-8k", "kmalloc-cg-8k"},
		{"dma-kmalloc-192", "dma-kmalloc-192"},
		{"ext4_groupinfo_4k", "ext4_groupinfo_4k"},
		{"bio-312", "bio-312"},
		{"erofs_pcluster-257", "erofs_pcluster-257"},
		{"msg_msg-8k", "msg_msg-8k"},
		{"nf_conntrack", "nf_conntrack"},
		{"nf_conntrack_expect", "nf_conntrack_expect"},
		{"nf-frags", "nf-frags"},
		{"ip4-frags", "ip4-frags"},
		{"TCPv6", "TCPv6"},
		{"Acpi-State", "Acpi-State"},
		{":0000064", ":0000064"},     // SLUB merged-cache alias in /sys/kernel/slab
		{":a-0000192", ":a-0000192"}, //
		// Not pointers: too short, glued to a word, too few zeros, odd parens.
		{"x_ffff123", "x_ffff123"},
		{"buffff8803eef66180", "buffff8803eef66180"},
		{"ffff8803eef66180x", "ffff8803eef66180x"},
		{"cache_0000000012345678abc", "cache_0000000012345678abc"},
		{"cache_00000000123", "cache_00000000123"},
		{"name(abc:def)", "name(abc:def)"},
		{"name()", "name()"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Group(tt.in); got != tt.want {
			t.Errorf("Group(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGroupAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Group("kmalloc-rcl-96") }); n != 0 {
		t.Errorf("unchanged name: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Group("nf_conntrack_ffff8803eef66180(2:docker-abc.scope)") }); n != 1 {
		t.Errorf("grouped name: %v allocs, want 1", n)
	}
}

// No cache name of the running kernel that lacks a pointer may change.
func TestLiveSlabinfo(t *testing.T) {
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
			t.Skip("/proc/slabinfo needs root")
		}
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "slabinfo -") || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		name := fields[0]
		n++
		got := Group(name)
		if strings.Contains(strings.ToLower(name), "ffff") {
			t.Logf("%s -> %s", name, got)
			continue
		}
		if got != name {
			t.Errorf("Group(%q) = %q: a name without a pointer changed", name, got)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no caches in /proc/slabinfo")
	}
	t.Logf("%d cache names checked", n)
}

func FuzzGroup(f *testing.F) {
	for _, s := range []string{"nf_conntrack_ffff8803eef66180(2:docker-abc.scope)", "kmalloc-96", "0xffffffff", "(1:)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		g := Group(name)
		if Group(g) != g {
			t.Errorf("Group is not idempotent: %q -> %q -> %q", name, g, Group(g))
		}
		if !strings.Contains(name, "ffff") &&
			!strings.Contains(name, "00000000") && !strings.HasSuffix(name, ")") && g != name {
			t.Errorf("%q changed to %q", name, g)
		}
	})
}
