# Scenario 5: kernels that refuse fragscope's BPF for real (Debian 6.12
# booted with lockdown=confidentiality). internal/vmtest adds this script
# to the shared initramfs (Boot.Files) with /vmtest/nobpf-report.txt, a
# kernel report from the corpus (testdata/kmsg), one record per line.
# a) lockdown: the lockdown LSM's confidentiality level denies
#    LOCKDOWN_BPF_READ_KERNEL (no bpf_probe_read* helpers for tracing
#    programs, so every program doing CO-RE reads is rejected by the
#    verifier), LOCKDOWN_KPROBES and LOCKDOWN_TRACEFS. Each hook must say
#    why it did not attach; what does not read kernel memory still runs.
# b) nobpf: fragscope under a seccomp filter that fails bpf(2) with EPERM
#    (systemd's SystemCallFilter=, a container's default profile): no BPF
#    at all. watch must say so in one line and go on with procfs snapshots
#    and the kernel's reports from /dev/kmsg; the guest writes the report
#    into /dev/kmsg during the session.
. /vmtest/lib.sh
set -u

mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
{
	echo "lockdown: $(cat /sys/kernel/security/lockdown 2>&1)"
	echo "lsm: $(cat /sys/kernel/security/lsm 2>&1)"
	echo "cmdline: $(cat /proc/cmdline)"
	echo "tracefs read: $(head -c 80 /sys/kernel/tracing/events/kmem/mm_page_alloc/id 2>&1)"
	dmesg | grep -i lockdown | head -5
} >/tmp/lockdown.txt
say "$(tr '\n' ' ' </tmp/lockdown.txt)"
emit lockdown.txt /tmp/lockdown.txt

fragscope doctor >/tmp/doctor.txt 2>&1
echo "rc=$?" >>/tmp/doctor.txt
emit doctor.txt /tmp/doctor.txt

watch_start lockdown all auto --duration 20s --verbose
watch_stop lockdown

name=nobpf
rm -f /tmp/$name.ready
say "session $name: fragscope watch under a seccomp filter refusing bpf(2)"
fsworkload nobpf fragscope watch --json --duration 20s --ready-file /tmp/$name.ready \
	--record /tmp/$name.trace </dev/null >/tmp/$name.ndjson 2>/tmp/$name.stderr &
WATCH_PID=$!
i=0
while [ ! -f /tmp/$name.ready ] && kill -0 "$WATCH_PID" 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -f /tmp/$name.ready ] || say "session $name: fragscope not ready after $i polls"
sleep 2

# The report, line by line as records of the kernel log. devkmsg_write
# lets one open write 10 records per 5 s (printk.devkmsg=ratelimit, the
# default) and drops the rest: every 10 lines get an open of their own.
n=0
exec 3>/dev/kmsg
while IFS= read -r l; do
	if [ "$n" -eq 10 ]; then
		exec 3>&-
		exec 3>/dev/kmsg
		n=0
	fi
	printf '<4>%s\n' "$l" >&3
	n=$((n + 1))
done </vmtest/nobpf-report.txt
exec 3>&-
say "wrote $(wc -l </vmtest/nobpf-report.txt) records into /dev/kmsg"
dmesg | grep -c 'bcmgenet\|page allocation failure' >/tmp/$name-kmsg-count.out
emit $name-kmsg-count.out /tmp/$name-kmsg-count.out
sleep 2
watch_stop $name
