# Scenario 6: attribution on a cgroup v1 host, as Amazon Linux 2 and
# CentOS 7 nodes are: no cgroup2 mount, a tmpfs at /sys/fs/cgroup with one
# v1 hierarchy per controller. fragscope (auto mode) must charge the order-6
# ring blocks of a task in a kubelet-shaped v1 memory cgroup (cgroupfs
# driver) to that cgroup: bpf_get_current_cgroup_id() says nothing here, the
# v1 memory cgroup's kernfs id is read with CO-RE.
. /vmtest/lib.sh
set -u
umount /sys/fs/cgroup
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in memory cpu,cpuacct pids; do
	mkdir -p "/sys/fs/cgroup/$c"
	mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
done
pod=/kubepods/burstable/pod5f0c6d2e-8a1b-4c3d-9e4f-a0b1c2d3e4f5
ctr=$pod/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
mkdir -p "/sys/fs/cgroup/memory$ctr"
emit_text memcg.txt "path=$ctr inode=$(stat -c %i "/sys/fs/cgroup/memory$ctr") mounts=$(grep -c ' cgroup ' /proc/mounts) cgroup2=$(grep -c cgroup2 /proc/mounts)"

watch_start memcgv1 default auto
run memcgv1-rings sh -c "echo \$\$ >/sys/fs/cgroup/memory$ctr/cgroup.procs && exec fsworkload rings 16 256"
watch_stop memcgv1
