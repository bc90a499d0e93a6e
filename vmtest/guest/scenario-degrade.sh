# Scenario 4: graceful degradation (Debian 6.1).
# a) A hook forced onto a mechanism this kernel refuses: fentry/fexit on
#    6.1's kmem_cache_create_usercopy (7 arguments; x86 BPF trampolines
#    take at most 6 before Linux 6.6). slab_create must say why; every other
#    hook must keep running and see the workload.
# b) The probes package's own tests on this kernel, among them the forced
#    kprobe on a symbol that does not exist (probes.Options.Symbols, which
#    the CLI does not expose): "symbol not found", other hooks attached.
# c) No BTF: /sys/kernel/btf/vmlinux hidden behind an empty file. Every
#    fragscope program uses CO-RE, so nothing can load: fragscope must name
#    the cause for every hook and exit non-zero, not hang or crash.
. /vmtest/lib.sh
set -u

watch_start nofentry all slab_create=fentry
run nofentry-conntrack load_conntrack
run nofentry-netns fsworkload netns
run nofentry-nsfail fsworkload nsfail
run nofentry-rings fsworkload rings 16 256
watch_stop nofentry

CI=true probes.test -test.v -test.count=1 \
	-test.run 'TestMissingSymbolDegrades|TestUnavailableHooksSayWhy|TestAttachEachTracepointMechanism|TestOrder6FromPacketRings' \
	>/tmp/probes-test.txt 2>&1
echo "rc=$?" >>/tmp/probes-test.txt
emit probes-test.txt /tmp/probes-test.txt

: >/tmp/empty
mount --bind /tmp/empty /sys/kernel/btf/vmlinux
say "BTF hidden: $(wc -c </sys/kernel/btf/vmlinux) bytes"
fragscope doctor >/tmp/doctor-nobtf.txt 2>&1
echo "rc=$?" >>/tmp/doctor-nobtf.txt
emit doctor-nobtf.txt /tmp/doctor-nobtf.txt
watch_start nobtf all auto --duration 20s
watch_stop nobtf
umount /sys/kernel/btf/vmlinux
